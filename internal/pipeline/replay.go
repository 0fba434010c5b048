package pipeline

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/kabuto-sec/kabuto/internal/clock"
	"github.com/kabuto-sec/kabuto/internal/event"
	"github.com/kabuto-sec/kabuto/internal/risk"
)

// StreamSink writes decisions and alerts as JSON Lines, the spec's
// encoding, deterministically.
type StreamSink struct {
	Decisions *bufio.Writer // nil: not written
	Alerts    *bufio.Writer // nil: not written
	Clock     clock.Clock   // times the replay (nil: clock.Mono)
	buf       []byte
	summary   *Summary
}

// Decision writes the decision on r.
func (s *StreamSink) Decision(_ context.Context, r *event.Record, res *risk.Result) error {
	s.summary.count(r, res)
	if s.Decisions == nil {
		return nil
	}
	s.buf = res.Decision.AppendJSON(s.buf[:0])
	s.buf = append(s.buf, '\n')
	_, err := s.Decisions.Write(s.buf)
	return err
}

// Alert writes a.
func (s *StreamSink) Alert(_ context.Context, a *event.Alert) error {
	s.summary.Alerts++
	s.summary.AlertKinds[a.Kind]++
	if a.Action == event.AlertHaltBuys {
		if _, ok := s.summary.Halts[a.Symbol]; !ok {
			s.summary.Halts[a.Symbol] = a.Time
		}
	}
	if s.Alerts == nil {
		return nil
	}
	s.buf = a.AppendJSON(s.buf[:0])
	s.buf = append(s.buf, '\n')
	_, err := s.Alerts.Write(s.buf)
	return err
}

// Summary counts what a replay decided.
type Summary struct {
	Records    int
	Actions    int
	Unknown    map[event.Type]int
	ByAction   map[string]int
	ByReason   map[string]int
	ShadowDiff int // actions the shadow policy decided otherwise
	Shadowed   bool
	Alerts     int
	AlertKinds map[string]int
	Halts      map[string]time.Time // symbol → first halt, stream time
	Elapsed    time.Duration
}

func newSummary() *Summary {
	return &Summary{Unknown: map[event.Type]int{}, ByAction: map[string]int{}, ByReason: map[string]int{}, AlertKinds: map[string]int{}, Halts: map[string]time.Time{}}
}

func (s *Summary) count(r *event.Record, res *risk.Result) {
	s.Actions++
	s.ByAction[res.Decision.Action]++
	for _, rc := range res.Decision.Reasons {
		s.ByReason[rc]++
	}
	if res.Shadow != nil {
		s.Shadowed = true
		if res.Shadow.Action != res.Decision.Action {
			s.ShadowDiff++
		}
	}
}

// Replay runs the stream in through p in stream time with the spec's
// semantics (reference records update state; alerts' halts and freezes
// apply to later records) and writes decisions and alerts as sink says.
// A malformed record stops the replay with an error naming its line and
// field; records of unknown types are counted and skipped. progress, when
// set, is called every 10,000 records with the count so far.
func Replay(ctx context.Context, in io.Reader, p *Pipeline, sink *StreamSink, progress func(int)) (*Summary, error) {
	if sink.Clock == nil {
		sink.Clock = clock.Mono{}
	}
	start := sink.Clock.Now()
	sum := newSummary()
	sink.summary = sum
	p.Sink = sink
	rd := event.NewReader(in)
	var r event.Record
	for {
		err := rd.NextInto(&r)
		if err == io.EOF {
			break
		}
		if event.IsUnknownType(err) {
			continue
		}
		if err != nil {
			return sum, err
		}
		sum.Records++
		if r.Type.Action() {
			_, err = p.Decide(ctx, &r)
		} else {
			err = p.Observe(ctx, &r)
		}
		if err != nil {
			return sum, fmt.Errorf("line %d: %w", rd.Line(), err)
		}
		if progress != nil && sum.Records%10000 == 0 {
			progress(sum.Records)
		}
	}
	sum.Unknown = rd.Unknown
	for _, w := range []*bufio.Writer{sink.Decisions, sink.Alerts} {
		if w != nil {
			if err := w.Flush(); err != nil {
				return sum, err
			}
		}
	}
	sum.Elapsed = sink.Clock.Now().Sub(start)
	return sum, nil
}

// ParseOnly reads and validates the stream without deciding anything: the
// baseline replay's throughput is measured against.
func ParseOnly(in io.Reader) (int, error) {
	rd := event.NewReader(in)
	var r event.Record
	n := 0
	for {
		err := rd.NextInto(&r)
		if err == io.EOF {
			return n, nil
		}
		if event.IsUnknownType(err) {
			continue
		}
		if err != nil {
			return n, err
		}
		n++
	}
}

// Format writes the summary for a person.
func (s *Summary) Format(w io.Writer) {
	rate := float64(s.Records) / s.Elapsed.Seconds()
	fmt.Fprintf(w, "records  %d (%d customer actions) in %v, %.0f records/s\n", s.Records, s.Actions, s.Elapsed.Round(time.Millisecond), rate)
	if len(s.Unknown) > 0 {
		fmt.Fprintf(w, "skipped  %s\n", countList(typeCounts(s.Unknown)))
	}
	fmt.Fprintf(w, "actions  %s\n", countList(s.ByAction))
	fmt.Fprintf(w, "reasons  %s\n", countList(s.ByReason))
	if s.Shadowed {
		fmt.Fprintf(w, "shadow   decided %d of %d actions differently\n", s.ShadowDiff, s.Actions)
	}
	fmt.Fprintf(w, "alerts   %d", s.Alerts)
	if s.Alerts > 0 {
		fmt.Fprintf(w, " (%s)", countList(s.AlertKinds))
	}
	fmt.Fprintln(w)
	if len(s.Halts) > 0 {
		syms := make([]string, 0, len(s.Halts))
		for k := range s.Halts {
			syms = append(syms, k)
		}
		sort.Strings(syms)
		var parts []string
		for _, k := range syms {
			parts = append(parts, k+" at "+s.Halts[k].Format("15:04:05"))
		}
		fmt.Fprintf(w, "halts    %s\n", strings.Join(parts, ", "))
	}
}

func typeCounts(m map[event.Type]int) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		out[string(k)] = v
	}
	return out
}

// countList formats counts largest first, then by name.
func countList(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}
