package server

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/guard"
	"github.com/kabuto-sec/kabuto/internal/reason"
)

// MaxBatch is the most records one POST /api/v1/events takes.
const MaxBatch = 10000

// postEvents takes one record, a JSON array of records, or JSON Lines
// (Content-Type application/x-ndjson), and returns a decision for every
// customer action, in order. Every record is validated before any is
// processed: one bad record refuses the whole batch, naming it and its
// field, and changes nothing. Should the guard then fail on a record, the
// batch stops there and the answer (503 guard_unavailable) reports each
// record's outcome: the decisions of those before it, stored and final,
// and the rest as unprocessed, of which nothing is stored (see partial).
func (s *Server) postEvents(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Guard == nil {
		return reason.E("unavailable.guard")
	}
	buf := bodies.Get().(*bytes.Buffer)
	buf.Reset()
	defer bodies.Put(buf) // the records decoded from it hold copies
	_, err := buf.ReadFrom(r.Body)
	body := buf.Bytes()
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
	index := make([]int, 0, len(raw)) // of each record in the batch
	skipped := 0
	for i, b := range raw {
		rec, err := event.Decode(b)
		if event.IsUnknownType(err) {
			skipped++
			continue
		}
		if err != nil {
			e := err.(*event.Error)
			where := "record " + strconv.Itoa(i+1) // from 1, as lines are
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
		index = append(index, i)
	}
	ctx := r.Context()
	out := make([]event.Decision, 0, len(recs))
	if bg, ok := s.cfg.Guard.(guard.Batcher); ok { // a cluster node takes the whole batch at once
		if ds, err := bg.DecideBatch(ctx, recs); err == nil {
			recs, out = nil, ds
		} else if !errors.Is(err, guard.ErrNoBatch) {
			// Records already decided are answered again, not decided twice.
			s.cfg.Log.WarnContext(ctx, "guard could not take the batch at once; taking its records one by one", "records", len(recs), "err", err)
		}
	}
	for k, rec := range recs {
		var err error
		if rec.Type.Action() {
			var d event.Decision
			if d, err = s.cfg.Guard.Decide(ctx, rec); err == nil {
				out = append(out, d)
				continue
			}
		} else if err = s.cfg.Guard.Observe(ctx, rec); err == nil {
			continue
		}
		s.cfg.Log.ErrorContext(ctx, "guard could not take a record; the rest of the batch is not processed", "event", rec.ID, "decided", len(out), "unprocessed", len(recs)-k, "err", err)
		writeCompact(w, http.StatusServiceUnavailable, partial(out, recs[k:], index[k:], ndjson, skipped))
		return nil
	}
	b := append(make([]byte, 0, 64+200*len(out)), `{"decisions":[`...)
	b = appendDecisions(b, out)
	b = append(b, `],"skipped_unknown_types":`...)
	b = strconv.AppendInt(b, int64(skipped), 10)
	writeCompact(w, http.StatusOK, append(b, "}\n"...))
	return nil
}

func appendDecisions(b []byte, ds []event.Decision) []byte {
	for i := range ds {
		if i > 0 {
			b = append(b, ',')
		}
		b = ds[i].AppendJSON(b)
	}
	return b
}

// partial is the answer to a batch the guard failed part-way through.
// Records are taken in order, each on its own: those before the failure
// were decided (or observed) and stored, and their decisions are final;
// from the record the guard could not take on, nothing was decided and
// nothing of them is stored. The answer lists both: decisions for the
// first, and "unprocessed" (record, counted from 1 in both encodings as
// error messages count; index, from 0, or line for JSON Lines; id) for
// the rest, to be sent again, alone. Fail closed: an action with no
// decision is refused.
func partial(done []event.Decision, rest []*event.Record, index []int, ndjson bool, skipped int) []byte {
	msg := "the guard failed part-way through the batch: the decisions listed are stored and final; " +
		"the records under unprocessed were not decided, nothing of them is stored: treat their actions as refused " +
		"(money movement must fail closed) and send those records again"
	b, _ := json.Marshal(reason.GuardUnavailable)
	b = append([]byte(`{"error":`), b...)
	m, _ := json.Marshal(msg)
	b = append(append(b, `,"message":`...), m...)
	b = append(b, `,"decisions":[`...)
	b = appendDecisions(b, done)
	b = append(b, `],"unprocessed":[`...)
	where := "index"
	if ndjson {
		where = "line"
	}
	for i, rec := range rest {
		if i > 0 {
			b = append(b, ',')
		}
		n := index[i]
		if ndjson {
			n++
		}
		id, _ := json.Marshal(rec.ID)
		b = append(b, `{"record":`...) // from 1 in both encodings
		b = strconv.AppendInt(b, int64(index[i]+1), 10)
		b = append(b, `,"`+where+`":`...)
		b = strconv.AppendInt(b, int64(n), 10)
		b = append(append(append(b, `,"event":`...), id...), `,"type":"`+string(rec.Type)+`"}`...)
	}
	b = append(b, `],"skipped_unknown_types":`...)
	b = strconv.AppendInt(b, int64(skipped), 10)
	return append(b, "}\n"...)
}

// bodies hold request bodies of POST /api/v1/events while they are read
// and decoded (at most MaxBody bytes each).
var bodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

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
		if raw, err = splitArray(t); err != nil {
			return nil, false, reason.New(http.StatusBadRequest, reason.BadRequest, "malformed JSON array: %v", err)
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
		return reason.E("unavailable.decisions")
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
		return reason.E("unavailable.decisions")
	}
	ds, err := s.cfg.Decisions.Decisions(r.Context(), "", r.PathValue("event"), 1)
	if err != nil {
		return err
	}
	if len(ds) == 0 {
		return reason.E("not_found.decision", "event", r.PathValue("event"))
	}
	writeJSON(w, http.StatusOK, ds[0])
	return nil
}

func (s *Server) listAlerts(w http.ResponseWriter, r *http.Request) error {
	if s.cfg.Decisions == nil {
		return reason.E("unavailable.alerts")
	}
	limit, err := intParam(r, "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	var since time.Time
	if v := r.URL.Query().Get("since"); v != "" {
		if since, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return reason.E("invalid_field.time", "field", "since")
		}
	}
	as, err := s.cfg.Decisions.Alerts(r.Context(), r.URL.Query().Get("symbol"), since, limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"alerts": as})
	return nil
}

// splitArray splits a JSON array into its elements, without copying them
// and without validating them: each is decoded, strictly, after. It checks
// the array's own syntax (brackets, commas, nothing after it), and finds
// each element's end by its brackets and strings.
func splitArray(t []byte) ([][]byte, error) {
	i := skipSpace(t, 1)
	if i < len(t) && t[i] == ']' {
		if j := skipSpace(t, i+1); j != len(t) {
			return nil, fmt.Errorf("data after the array at byte %d", j)
		}
		return [][]byte{}, nil
	}
	var out [][]byte
	for {
		end, err := valueEnd(t, i)
		if err != nil {
			return nil, err
		}
		out = append(out, t[i:end])
		i = skipSpace(t, end)
		if i == len(t) {
			return nil, errors.New("unexpected end of JSON input")
		}
		switch t[i] {
		case ',':
			i = skipSpace(t, i+1)
			continue
		case ']':
			if j := skipSpace(t, i+1); j != len(t) {
				return nil, fmt.Errorf("data after the array at byte %d", j)
			}
			return out, nil
		}
		return nil, fmt.Errorf("want , or ] at byte %d", i)
	}
}

func skipSpace(t []byte, i int) int {
	for i < len(t) && (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r') {
		i++
	}
	return i
}

// valueEnd returns the end of the JSON value that starts at t[i]: after
// its closing bracket or quote, or, for a number or literal, where the
// next comma, bracket or space is.
func valueEnd(t []byte, i int) (int, error) {
	if i >= len(t) {
		return 0, errors.New("unexpected end of JSON input")
	}
	switch t[i] {
	case ',', ']', '}', ':':
		return 0, fmt.Errorf("want a value at byte %d", i)
	case '{', '[', '"':
	default:
		j := i
		for j < len(t) && t[j] != ',' && t[j] != ']' && t[j] != '}' && t[j] != ' ' && t[j] != '\t' && t[j] != '\n' && t[j] != '\r' {
			j++
		}
		return j, nil
	}
	depth := 0
	for j := i; j < len(t); j++ {
		switch t[j] {
		case '"':
			for j++; j < len(t) && t[j] != '"'; j++ {
				if t[j] == '\\' {
					j++
				}
			}
			if j >= len(t) {
				return 0, errors.New("unexpected end of JSON input in a string")
			}
			if depth == 0 {
				return j + 1, nil
			}
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return j + 1, nil
			}
			if depth < 0 {
				return 0, fmt.Errorf("unbalanced %c at byte %d", t[j], j)
			}
		}
	}
	return 0, errors.New("unexpected end of JSON input")
}
