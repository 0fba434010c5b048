package server

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/kabuto-sec/kabuto/internal/apikey"
	"github.com/kabuto-sec/kabuto/internal/broker"
	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/reason"
	"github.com/kabuto-sec/kabuto/internal/stepup"
)

// stepUpAnswer is the challenge in a step_up_required answer: the
// brokerage runs the step-up with its customer, then sends the very same
// action again with X-Kabuto-Step-Up: <factor>:<challenge>.
type stepUpAnswer struct {
	Challenge string    `json:"challenge"`
	Factor    string    `json:"factor"`
	ExpiresAt time.Time `json:"expires_at"`
	Header    string    `json:"header"`
}

// stepUpFor is what a challenge of this request is bound to.
func (s *Server) stepUpFor(r *http.Request) stepup.For {
	f := stepup.For{Account: r.PathValue("account"), Session: r.Header.Get("X-Kabuto-Session")}
	if k := keyOf(r); k != "" {
		f.Principal = "apikey:" + k
	}
	return f
}

// challenge issues the challenge of a step_up_required answer e to r.
func (s *Server) challenge(r *http.Request, e *reason.Error) (*stepUpAnswer, error) {
	if s.cfg.StepUps == nil || e.Binding == "" || e.Decision == nil {
		return nil, nil
	}
	f := s.stepUpFor(r)
	f.Binding = e.Binding
	c, err := s.cfg.StepUps.Issue(r.Context(), f, e.Decision.Factor)
	if err != nil {
		return nil, err
	}
	return &stepUpAnswer{Challenge: c.Value, Factor: c.Factor, ExpiresAt: c.Expires, Header: "X-Kabuto-Step-Up: " + c.Factor + ":" + c.Value}, nil
}

// withStepUp reads X-Kabuto-Step-Up: "<factor>:<challenge>", the
// brokerage's word that its customer just passed factor for the action
// the challenge was issued for. The challenge is spent here, whatever
// follows, and a is given the step-up only when it was this caller's,
// for this account and session, unspent and in time; the brokerage
// then checks that it was issued for this very action. A header that
// fails any of this counts for nothing (the action is challenged again,
// saying why).
func (s *Server) withStepUp(r *http.Request, a *broker.Actor) error {
	v := r.Header.Get("X-Kabuto-Step-Up")
	if v == "" {
		return nil
	}
	refuse := func(why string) error {
		s.cfg.Log.WarnContext(r.Context(), "step-up proof refused", "principal", a.Principal, "session", a.Session, "why", why)
		*r = *r.WithContext(context.WithValue(r.Context(), proofCtx, "the X-Kabuto-Step-Up sent "+why))
		return nil
	}
	f, c, err := parseStepUp(v)
	if err != nil {
		return refuse(err.Error())
	}
	if s.cfg.StepUps == nil {
		return refuse("cannot be checked: this server keeps no step-up challenges")
	}
	binding, err := s.cfg.StepUps.Spend(r.Context(), c, s.stepUpFor(r))
	if errors.Is(err, stepup.ErrInvalid) {
		return refuse("was already used, has expired, or was issued for another caller, account or session")
	}
	if err != nil {
		return err
	}
	a.StepUp = &broker.StepUp{Factor: f, Binding: binding}
	// Should the action be challenged all the same, this is why.
	*r = *r.WithContext(context.WithValue(r.Context(), proofCtx, "was issued for another action or a stronger factor, and is now spent"))
	s.cfg.Log.InfoContext(r.Context(), "step-up attested by the caller", "principal", a.Principal, "factor", f, "binding", binding, "session", a.Session)
	return nil
}

// parseStepUp reads an X-Kabuto-Step-Up value, "<factor>:<challenge>".
// The error says, for the caller, what is wrong with it.
func parseStepUp(v string) (factor, challenge string, err error) {
	f, c, ok := strings.Cut(v, ":")
	if !ok || (f != event.FactorPhishingResistant && f != event.FactorMFA) {
		return "", "", errors.New("is not <factor>:<challenge> with factor phishing_resistant or mfa")
	}
	if !stepup.Valid(c) {
		return "", "", errors.New("is not a challenge this server issued; send the challenge of the step_up_required answer, once")
	}
	return f, c, nil
}

// stepUpActor is actor with the request's step-up, if any.
func (s *Server) stepUpActor(r *http.Request) (broker.Actor, error) {
	a := s.actor(r)
	if err := s.withStepUp(r, &a); err != nil {
		return a, err
	}
	return a, nil
}

// keyOf returns the id of the API key r was authorised with, or "".
func keyOf(r *http.Request) string {
	if k, ok := r.Context().Value(keyCtx).(*apikey.Key); ok {
		return k.ID
	}
	return ""
}
