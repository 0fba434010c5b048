package server

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/reason"
)

// MaxBatch is the most records one POST /api/v1/events takes.
const MaxBatch = 10000

// postEvents takes one record, a JSON array of records, or JSON Lines
// (Content-Type application/x-ndjson), and returns a decision for every
// customer action, in order. Every record is validated before any is
// processed: one bad record refuses the whole batch, naming it and its
// field, and changes nothing.
func (s *Server) postEvents(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Guard == nil {
		return reason.New(http.StatusServiceUnavailable, reason.Unavailable, "this server runs no guard")
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return reason.New(http.StatusRequestEntityTooLarge, reason.BadRequest, "a batch may be at most %d bytes", MaxBody)
		}
		return err
	}
	raw, ndjson, err := splitRecords(body, r.Header.Get("Content-Type"))
	if err != nil {
		return err
	}
	recs := make([]*event.Record, 0, len(raw))
	skipped := 0
	for i, b := range raw {
		rec, err := event.Decode(b)
		if event.IsUnknownType(err) {
			skipped++
			continue
		}
		if err != nil {
			e := err.(*event.Error)
			where := "record " + strconv.Itoa(i)
			if ndjson {
				where = "line " + strconv.Itoa(i+1)
			}
			msg := where + ": " + e.Error()
			if e.Field != "" {
				return &reason.Error{Status: http.StatusBadRequest, Code: reason.InvalidField, Message: msg}
			}
			return &reason.Error{Status: http.StatusBadRequest, Code: reason.BadRequest, Message: msg}
		}
		recs = append(recs, rec)
	}
	ctx := r.Context()
	out := make([]event.Decision, 0, len(recs))
	for _, rec := range recs {
		if rec.Type.Action() {
			d, err := s.cfg.Guard.Decide(ctx, rec)
			if err != nil {
				s.cfg.Log.ErrorContext(ctx, "guard could not decide", "event", rec.ID, "err", err)
				return reason.New(http.StatusServiceUnavailable, reason.GuardUnavailable,
					"no decision could be made for %s; treat it as refused (money movement must fail closed)", rec.ID)
			}
			out = append(out, d)
			continue
		}
		if err := s.cfg.Guard.Observe(ctx, rec); err != nil {
			return err
		}
	}
	b := append(make([]byte, 0, 64+200*len(out)), `{"decisions":[`...)
	for i := range out {
		if i > 0 {
			b = append(b, ',')
		}
		b = out[i].AppendJSON(b)
	}
	b = append(b, `],"skipped_unknown_types":`...)
	b = strconv.AppendInt(b, int64(skipped), 10)
	writeCompact(w, http.StatusOK, append(b, "}\n"...))
	return nil
}

// splitRecords splits a body into record objects.
func splitRecords(body []byte, contentType string) (raw [][]byte, ndjson bool, err error) {
	t := bytes.TrimSpace(body)
	switch {
	case len(t) == 0:
		return nil, false, reason.New(http.StatusBadRequest, reason.BadRequest, "empty body: send a record, an array of records, or JSON Lines")
	case strings.HasPrefix(contentType, "application/x-ndjson") || strings.HasPrefix(contentType, "application/jsonl"):
		sc := bufio.NewScanner(bytes.NewReader(t))
		sc.Buffer(nil, event.MaxLine)
		for sc.Scan() {
			raw = append(raw, append([]byte(nil), sc.Bytes()...))
		}
		if err := sc.Err(); err != nil {
			return nil, true, reason.New(http.StatusBadRequest, reason.BadRequest, "reading JSON Lines: %v", err)
		}
		ndjson = true
	case t[0] == '[':
		var arr []json.RawMessage
		if err := json.Unmarshal(t, &arr); err != nil {
			return nil, false, reason.New(http.StatusBadRequest, reason.BadRequest, "malformed JSON array: %v", err)
		}
		for _, a := range arr {
			raw = append(raw, a)
		}
	default:
		raw = [][]byte{t}
	}
	if len(raw) > MaxBatch {
		return nil, ndjson, reason.New(http.StatusRequestEntityTooLarge, reason.BadRequest, "at most %d records per request", MaxBatch)
	}
	return raw, ndjson, nil
}

func (s *Server) listDecisions(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Decisions == nil {
		return reason.New(http.StatusServiceUnavailable, reason.Unavailable, "this server keeps no decisions")
	}
	limit, err := intParam(r, "limit", 50, 1, 1000)
	if err != nil {
		return err
	}
	ds, err := s.cfg.Decisions.Decisions(r.Context(), r.URL.Query().Get("account"), "", limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"decisions": ds})
	return nil
}

func (s *Server) getDecision(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Decisions == nil {
		return reason.New(http.StatusServiceUnavailable, reason.Unavailable, "this server keeps no decisions")
	}
	ds, err := s.cfg.Decisions.Decisions(r.Context(), "", r.PathValue("event"), 1)
	if err != nil {
		return err
	}
	if len(ds) == 0 {
		return reason.New(http.StatusNotFound, reason.NotFound, "no decision on event %q", r.PathValue("event"))
	}
	writeJSON(w, http.StatusOK, ds[0])
	return nil
}

func (s *Server) listAlerts(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Decisions == nil {
		return reason.New(http.StatusServiceUnavailable, reason.Unavailable, "this server keeps no alerts")
	}
	limit, err := intParam(r, "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	var since time.Time
	if v := r.URL.Query().Get("since"); v != "" {
		if since, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return reason.New(http.StatusBadRequest, reason.InvalidField, "since must be an RFC 3339 time")
		}
	}
	as, err := s.cfg.Decisions.Alerts(r.Context(), r.URL.Query().Get("symbol"), since, limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"alerts": as})
	return nil
}
