package server

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kabuto-sec/kabuto/internal/surveil"
)

// gatewaySource is a guard that recognises the brokerage's gateway: an
// address many accounts act from with no client context (the pipeline).
type gatewaySource interface {
	Gateways() []surveil.Gateway
}

// gateways returns the addresses the guard recognised as gateways.
func (s *Server) gateways() []surveil.Gateway {
	if g, ok := s.cfg.Guard.(gatewaySource); ok {
		return g.Gateways()
	}
	return nil
}

// registerGatewayMetric exports kabuto_gateway_addresses: how many
// addresses many accounts act from with no client context right now.
func (s *Server) registerGatewayMetric() {
	s.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kabuto_gateway_addresses",
		Help: "Addresses many accounts act from with no client context (no X-Kabuto-Client-IP and X-Kabuto-Device): the brokerage's gateway; surveillance weighs them as unknown."},
		func() float64 { return float64(len(s.gateways())) }))
}

// readyDetail is the body of a ready /readyz: with a warning when
// customers' actions arrive without their context.
func (s *Server) readyDetail() map[string]any {
	body := map[string]any{"status": "ready", "database": string(s.cfg.DB.Dialect)}
	if gws := s.gateways(); len(gws) > 0 {
		body["client_context"] = map[string]any{
			"status": "missing",
			"message": "many accounts act from one address with no device: the integration leaves out X-Kabuto-Client-IP and X-Kabuto-Device " +
				"(or the ip and device fields of records); surveillance weighs these addresses as unknown and has no address or device signal for these customers",
			"gateways": gws,
		}
	}
	return body
}
