// Package server wires Kabuto's HTTP surface: the JSON API under /api/v1
// (API keys, strict JSON, errors as {"error": code, "message": text}), the
// operational endpoints /healthz, /readyz and /metrics, and the browser
// pages. Handlers return errors; one place maps them to responses.
package server

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kabuto-sec/kabuto/internal/apikey"
	"github.com/kabuto-sec/kabuto/internal/broker"
	"github.com/kabuto-sec/kabuto/internal/cases"
	"github.com/kabuto-sec/kabuto/internal/clock"
	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/guard"
	"github.com/kabuto-sec/kabuto/internal/netinfo"
	"github.com/kabuto-sec/kabuto/internal/reason"
	"github.com/kabuto-sec/kabuto/internal/stepup"
	"github.com/kabuto-sec/kabuto/internal/store"
)

// Config configures a Server.
type Config struct {
	DB     *store.DB
	Broker *broker.Broker
	Keys   *apikey.Store
	Net    *netinfo.Table // nil: netinfo.Builtin()
	Log    *slog.Logger
	// Version is reported by /healthz.
	Version string
	// Guard decides records sent to POST /api/v1/events (integration mode).
	Guard guard.Guard
	// Decisions is where decisions and alerts are kept, for the queries.
	Decisions DecisionStore
	// Lists keeps the guard's block, allow and watch lists.
	Lists ListStore
	// BackOffice freezes accounts, halts instruments and answers the
	// regulator's figures (nil: halts go to the brokerage alone).
	BackOffice *cases.Service
	// StepUps issues and spends the step-up challenges of
	// X-Kabuto-Step-Up (nil: a store on DB).
	StepUps *stepup.Store
	// AllowDemoKey lets DemoKey authenticate, on loopback connections
	// only. Only `kabuto demo` on a loopback address sets it.
	AllowDemoKey bool
	// Clock tells the time of stored entries and of request latencies
	// (nil: clock.Real).
	Clock clock.Clock
}

// DemoKey is the demo's well-known API key. It is a default credential:
// a server accepts it only when AllowDemoKey is set and the connection
// is on a loopback address, so the key left in a demo's database opens
// nothing when the same data is served by `kabuto serve`.
const DemoKey = "kb_demo_local_only"

// ScopeMetrics is the API key scope that may read /metrics (as may admin).
const ScopeMetrics = "metrics"

// DecisionStore answers queries about stored decisions and alerts.
type DecisionStore interface {
	Decisions(ctx context.Context, account, eventID string, limit int) ([]guard.Explained, error)
	Alerts(ctx context.Context, symbol string, since time.Time, limit int) ([]event.Alert, error)
}

// Server is Kabuto's HTTP server.
type Server struct {
	cfg     Config
	api     *http.ServeMux // the API surface (see isAPI): keys, JSON errors
	web     *http.ServeMux // the browser surface: pages, forms, cookies
	routes  []route
	reg     *prometheus.Registry
	reqs    *prometheus.CounterVec
	latency *prometheus.HistogramVec
	actions *prometheus.CounterVec
}

// handler is an HTTP handler that returns its error to one place that
// writes it.
type handler func(w http.ResponseWriter, r *http.Request) error

type route struct {
	method, path string
	scope        string // API key scope required; "" for public
	h            handler
}

// New returns a Server.
func New(cfg Config) *Server {
	if cfg.Net == nil {
		cfg.Net = netinfo.Builtin()
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.StepUps == nil && cfg.DB != nil {
		cfg.StepUps = stepup.New(cfg.DB, cfg.Clock.Now)
	}
	s := &Server{cfg: cfg, api: http.NewServeMux(), web: http.NewServeMux(), reg: prometheus.NewRegistry()}
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.reqs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kabuto_http_requests_total", Help: "HTTP requests by route and status."}, []string{"route", "code"})
	s.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "kabuto_http_request_seconds", Help: "HTTP request latency by route.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}, []string{"route"})
	s.actions = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kabuto_broker_actions_total", Help: "Brokerage actions by type and outcome code."}, []string{"type", "outcome"})
	s.reg.MustRegister(s.reqs, s.latency, s.actions)
	s.registerGatewayMetric()
	if cfg.Broker != nil {
		cfg.Broker.Subscribe(func(_ context.Context, r *event.Record) {
			if r.Type.Action() {
				s.actions.WithLabelValues(string(r.Type), "emitted").Inc()
			}
		})
	}
	s.routes = append(s.apiRoutes(), s.backOfficeRoutes()...)
	for _, rt := range s.routes {
		s.handle(rt)
	}
	s.api.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": cfg.Version})
	})
	s.api.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := cfg.DB.PingContext(ctx); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": reason.Unavailable, "message": "database unreachable"})
			return
		}
		writeJSON(w, http.StatusOK, s.readyDetail())
	})
	s.api.HandleFunc("GET /api/v1/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(openAPI)
	})
	s.web.HandleFunc("GET /{$}", s.home)
	return s
}

// metrics serves the Prometheus metrics, to a key with the metrics or
// admin scope only: they tell an attacker how the guard answers.
func (s *Server) metrics(w http.ResponseWriter, r *http.Request) error {
	promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
	return nil
}

// Mux returns the mux of the browser surface, where the pages (the
// console, the portal) are added. It serves every path but the API's
// (isAPI), with the browser's secure defaults (browserDefaults).
func (s *Server) Mux() *http.ServeMux { return s.web }

// Handler returns the server's handler with its middleware.
func (s *Server) Handler() http.Handler {
	api, web := apiDefaults(s.api), browserDefaults(s.web)
	return s.middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isAPI(r.URL.Path) {
			api.ServeHTTP(w, r)
			return
		}
		web.ServeHTTP(w, r)
	}))
}

func (s *Server) handle(rt route) {
	pattern := rt.method + " " + rt.path
	s.api.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := s.cfg.Clock.Now()
		rec := &statusWriter{ResponseWriter: w, code: 200}
		err := s.authorize(r, rt.scope)
		if err == nil {
			err = rt.h(rec, r)
		}
		if err != nil {
			s.writeError(rec, r, err)
		}
		s.reqs.WithLabelValues(pattern, strconv.Itoa(rec.code)).Inc()
		s.latency.WithLabelValues(pattern).Observe(s.cfg.Clock.Now().Sub(start).Seconds())
	}))
}

type ctxKey int

const (
	keyCtx   ctxKey = iota // the caller's *apikey.Key
	proofCtx               // why the X-Kabuto-Step-Up sent was refused
)

func (s *Server) authorize(r *http.Request, scope string) error {
	if scope == "" {
		return nil
	}
	auth := r.Header.Get("Authorization")
	secret, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok {
		return reason.E("unauthenticated.no_key")
	}
	k, err := s.CheckKey(r, strings.TrimSpace(secret))
	if errors.Is(err, apikey.ErrInvalid) {
		return reason.E("unauthenticated.bad_key")
	}
	if err != nil {
		return err
	}
	if !k.Has(scope) && !k.Has(apikey.ScopeAdmin) {
		return reason.E("forbidden.scope", "scope", scope)
	}
	*r = *r.WithContext(context.WithValue(r.Context(), keyCtx, k))
	return nil
}

// CheckKey returns the API key whose secret this is, for a request that
// came in on r. DemoKey is refused unless the server allows it and r came
// over a loopback connection.
func (s *Server) CheckKey(r *http.Request, secret string) (*apikey.Key, error) {
	if subtle.ConstantTimeCompare([]byte(secret), []byte(DemoKey)) == 1 && !(s.cfg.AllowDemoKey && loopback(r)) {
		return nil, apikey.ErrInvalid
	}
	return s.cfg.Keys.Check(r.Context(), secret)
}

// loopback reports whether r came over a connection whose both ends are
// loopback addresses.
func loopback(r *http.Request) bool {
	la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return false
	}
	lip, _, err := net.SplitHostPort(la.String())
	if err != nil {
		return false
	}
	rip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	l, r2 := net.ParseIP(lip), net.ParseIP(rip)
	return l != nil && r2 != nil && l.IsLoopback() && r2.IsLoopback()
}

// errorBody is the JSON of every error response.
type errorBody struct {
	Error    string          `json:"error"`
	Message  string          `json:"message"`
	Params   map[string]any  `json:"params,omitempty"`
	Factor   string          `json:"factor,omitempty"`
	Binding  string          `json:"binding,omitempty"`
	StepUp   *stepUpAnswer   `json:"step_up,omitempty"`
	Decision *event.Decision `json:"decision,omitempty"`
}

// writeError is the one place errors become responses.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if e := reason.As(err); e != nil {
		body := errorBody{Error: e.Code, Message: e.Text(lang(r)), Params: e.ParamMap(), Decision: e.Decision}
		if e.Decision != nil && e.Code == reason.StepUpRequired {
			body.Factor, body.Binding = e.Decision.Factor, e.Binding
			su, err := s.challenge(r, e)
			if err != nil {
				s.cfg.Log.ErrorContext(r.Context(), "could not issue a step-up challenge", "err", err)
				writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: reason.Unavailable, Message: "the step-up could not be prepared, so nothing was done; please try again"})
				return
			}
			body.StepUp = su
			if why, ok := r.Context().Value(proofCtx).(string); ok {
				body.Message += " (" + why + ")"
			}
		}
		writeJSON(w, e.HTTPStatus(), body)
		return
	}
	if errors.Is(err, context.Canceled) {
		return
	}
	s.cfg.Log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	writeJSON(w, http.StatusInternalServerError, errorBody{Error: reason.Internal, Message: "something went wrong on our side; nothing was changed"})
}

// writeJSON writes v as compact JSON, one line, as every answer of the
// API is written (errors and successes alike; pipe to jq to read).
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// writeCompact writes v as compact JSON, for machine-to-machine calls on
// the hot path.
func writeCompact(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

// MaxBody is the largest request body the API reads.
const MaxBody = 1 << 20

// decodeJSON strictly decodes the request body into v: unknown fields,
// wrong types and trailing data are refused with the field named.
func decodeJSON(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return reason.E("bad_request.content_type")
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, MaxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.As(err, &te):
			return reason.New(http.StatusBadRequest, reason.InvalidField, "field %s: wrong type (JSON %s)", te.Field, te.Value)
		case errors.As(err, &se):
			return reason.New(http.StatusBadRequest, reason.BadRequest, "malformed JSON at byte %d", se.Offset)
		case errors.Is(err, io.EOF):
			return reason.E("bad_request.empty")
		case strings.HasPrefix(err.Error(), "json: unknown field"):
			return reason.New(http.StatusBadRequest, reason.InvalidField, "%s", strings.TrimPrefix(err.Error(), "json: "))
		}
		return reason.New(http.StatusBadRequest, reason.BadRequest, "malformed JSON: %v", err)
	}
	if dec.More() {
		return reason.E("bad_request.one_object")
	}
	return nil
}

// actor builds the actor context of a call. The brokerage's systems,
// calling with an API key, pass their customer's context in X-Kabuto-*
// headers; what they leave out is taken from the connection.
func (s *Server) actor(r *http.Request) broker.Actor {
	h := r.Header
	a := broker.Actor{
		Session: h.Get("X-Kabuto-Session"), Device: h.Get("X-Kabuto-Device"), UA: h.Get("X-Kabuto-UA"),
		IP: h.Get("X-Kabuto-Client-IP"), Country: strings.ToUpper(h.Get("X-Kabuto-Country")), Channel: h.Get("X-Kabuto-Channel"),
	}
	if k, ok := r.Context().Value(keyCtx).(*apikey.Key); ok {
		a.Principal = "apikey:" + k.ID
	}
	if a.IP == "" {
		a.IP, _, _ = net.SplitHostPort(r.RemoteAddr)
	}
	if a.UA == "" {
		a.UA = r.UserAgent()
	}
	switch a.Channel {
	case event.ChannelWeb, event.ChannelApp, event.ChannelAPI:
	default:
		a.Channel = event.ChannelAPI
	}
	if v, err := strconv.ParseInt(h.Get("X-Kabuto-ASN"), 10, 64); err == nil && v >= 0 {
		a.ASN = v
	} else if info, ok := s.cfg.Net.Lookup(a.IP); ok {
		a.ASN = info.ASN
		if a.Country == "" {
			a.Country = info.Country
		}
	}
	if a.Country == "" {
		if info, ok := s.cfg.Net.Lookup(a.IP); ok {
			a.Country = info.Country
		}
	}
	return a
}

// statusWriter remembers the status code written.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// middleware adds request logs, panic recovery and the body limit, for
// both surfaces; each adds its own defaults (apiDefaults, browserDefaults).
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := s.cfg.Clock.Now()
		sw := &statusWriter{ResponseWriter: w, code: 200}
		defer func() {
			if p := recover(); p != nil {
				s.cfg.Log.ErrorContext(r.Context(), "panic serving request", "path", r.URL.Path, "panic", fmt.Sprint(p))
				if isAPI(r.URL.Path) {
					writeJSON(sw, http.StatusInternalServerError, errorBody{Error: reason.Internal, Message: "something went wrong on our side"})
				} else {
					http.Error(sw, "something went wrong on our side · システムエラーが発生しました", http.StatusInternalServerError)
				}
			}
			s.cfg.Log.InfoContext(r.Context(), "request", "method", r.Method, "path", r.URL.Path, "status", sw.code,
				"took", s.cfg.Clock.Now().Sub(start).Round(time.Microsecond), "remote", r.RemoteAddr)
		}()
		r.Body = http.MaxBytesReader(sw, r.Body, MaxBody)
		next.ServeHTTP(sw, r)
	})
}

// Serve serves on addr until ctx ends, then shuts down gracefully,
// letting requests in flight finish for up to ten seconds.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	log.Info("shutting down", "addr", ln.Addr().String())
	return srv.Shutdown(sctx)
}
