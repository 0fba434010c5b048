package streamgen

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Kinds of label lines.
const (
	LabelMeta    = "meta"    // the stream's parameters; first line
	LabelTarget  = "target"  // an instrument the attackers ramp
	LabelAccount = "account" // an account the attackers act in (a victim)
	LabelSession = "session" // a session the attackers opened or replayed
	LabelRecord  = "record"  // one record: fraudulent (family) or a look-alike's
)

// Credentials the attackers hold, which say what challenge stops them.
const (
	// CredRelay is a real-time phishing kit that relays the victim's
	// one-time codes: it passes any challenge a code answers (mfa), never
	// a phishing-resistant one.
	CredRelay = "relay"
	// CredStolen is a leaked or stolen password: it passes no second
	// factor, unless the attacker also holds the victim's mailbox
	// (email_otp), which is said by MFAPassable.
	CredStolen = "stolen"
	// CredCookie is a session cookie taken by an infostealer: it passes
	// no challenge at all.
	CredCookie = "cookie"
)

// Label is one line of a labels file (JSON Lines), the ground truth of a
// generated stream. Which fields are set depends on Kind.
type Label struct {
	Kind string `json:"kind"`

	// meta
	Seed      uint64   `json:"seed,omitempty"`
	Customers int      `json:"customers,omitempty"`
	Days      int      `json:"days,omitempty"`
	AttackDay string   `json:"attack_day,omitempty"`
	Families  []Family `json:"families,omitempty"`

	// target, account, session, record
	Family Family `json:"family,omitempty"`
	Symbol string `json:"symbol,omitempty"`

	// record (and account, session)
	ID       string `json:"id,omitempty"`
	Type     string `json:"type,omitempty"`
	Account  string `json:"account,omitempty"`
	Session  string `json:"session,omitempty"`
	Side     string `json:"side,omitempty"`
	ValueJPY int64  `json:"value_jpy,omitempty"`
	// Credential is what the attacker acting in this record holds (CredRelay, CredStolen or CredCookie).
	Credential string `json:"credential,omitempty"`
	// MFAPassable says the attacker passes an mfa challenge (a code).
	MFAPassable bool `json:"mfa_passable,omitempty"`
	// Lookalike names the legitimate look-alike a record belongs to
	// (records of look-alikes have no Family).
	Lookalike string `json:"lookalike,omitempty"`
}

func (g *gen) writeLabel(l *Label) error {
	if g.labels == nil {
		return nil
	}
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	g.labels.Write(b)
	return g.labels.WriteByte('\n')
}

// writeHeader writes the meta line and the planned targets, accounts and
// sessions.
func (g *gen) writeHeader() error {
	if err := g.writeLabel(&Label{Kind: LabelMeta, Seed: g.cfg.Seed, Customers: g.cfg.Customers, Days: g.cfg.Days,
		AttackDay: g.dates[len(g.dates)-1].Format("2006-01-02"), Families: g.cfg.Families}); err != nil {
		return err
	}
	for _, t := range g.plan.targets {
		if err := g.writeLabel(&Label{Kind: LabelTarget, Family: t.fam, Symbol: t.sym}); err != nil {
			return err
		}
	}
	for _, v := range g.plan.victims {
		if err := g.writeLabel(&Label{Kind: LabelAccount, Family: v.fam, Account: v.c.id, Credential: v.cred}); err != nil {
			return err
		}
	}
	return nil
}

// Truth is a labels file read back.
type Truth struct {
	Meta     Label
	Targets  map[string]Family // symbol → family
	Accounts map[string]Family // victim account → family
	Sessions map[string]Family // attacker session → family
	Records  map[string]Label  // record id → label
}

// LabelError is a bad line of a labels file.
type LabelError struct {
	Line  int
	Field string
	Msg   string
}

func (e *LabelError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return fmt.Sprintf("line %d: field %s: %s", e.Line, e.Field, e.Msg)
}

// ReadLabels reads a labels file. A bad line is an error naming its line
// and field.
func ReadLabels(r io.Reader) (*Truth, error) {
	t := &Truth{Targets: map[string]Family{}, Accounts: map[string]Family{}, Sessions: map[string]Family{}, Records: map[string]Label{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<16), 1<<22)
	line := 0
	known := map[Family]bool{}
	for _, f := range Families {
		known[f] = true
	}
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			return nil, &LabelError{Line: line, Msg: "blank line"}
		}
		var l Label
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				return nil, &LabelError{Line: line, Field: te.Field, Msg: "want " + te.Type.String()}
			}
			return nil, &LabelError{Line: line, Msg: "not a JSON object of a label: " + err.Error()}
		}
		if dec.More() {
			return nil, &LabelError{Line: line, Msg: "more than one JSON value on the line"}
		}
		if l.Family != "" && !known[l.Family] {
			return nil, &LabelError{Line: line, Field: "family", Msg: fmt.Sprintf("unknown family %q", l.Family)}
		}
		switch l.Credential {
		case "", CredRelay, CredStolen, CredCookie:
		default:
			return nil, &LabelError{Line: line, Field: "credential", Msg: fmt.Sprintf("unknown credential %q", l.Credential)}
		}
		switch l.Kind {
		case LabelMeta:
			if line != 1 {
				return nil, &LabelError{Line: line, Field: "kind", Msg: "meta must be the first line"}
			}
			t.Meta = l
		case LabelTarget:
			if l.Symbol == "" || l.Family == "" {
				return nil, &LabelError{Line: line, Field: missing("symbol", l.Symbol, "family", string(l.Family)), Msg: "missing"}
			}
			t.Targets[l.Symbol] = l.Family
		case LabelAccount:
			if l.Account == "" || l.Family == "" {
				return nil, &LabelError{Line: line, Field: missing("account", l.Account, "family", string(l.Family)), Msg: "missing"}
			}
			t.Accounts[l.Account] = l.Family
		case LabelSession:
			if l.Session == "" || l.Family == "" {
				return nil, &LabelError{Line: line, Field: missing("session", l.Session, "family", string(l.Family)), Msg: "missing"}
			}
			t.Sessions[l.Session] = l.Family
		case LabelRecord:
			if l.ID == "" {
				return nil, &LabelError{Line: line, Field: "id", Msg: "missing"}
			}
			if (l.Family == "") == (l.Lookalike == "") {
				return nil, &LabelError{Line: line, Field: "family", Msg: "a record is either fraudulent (family) or a look-alike's (lookalike)"}
			}
			if _, dup := t.Records[l.ID]; dup {
				return nil, &LabelError{Line: line, Field: "id", Msg: fmt.Sprintf("record %q labelled twice", l.ID)}
			}
			t.Records[l.ID] = l
			if l.Family != "" && l.Session != "" {
				t.Sessions[l.Session] = l.Family
			}
		case "":
			return nil, &LabelError{Line: line, Field: "kind", Msg: "missing"}
		default:
			return nil, &LabelError{Line: line, Field: "kind", Msg: fmt.Sprintf("unknown kind %q", l.Kind)}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, &LabelError{Line: line + 1, Msg: err.Error()}
	}
	if line == 0 {
		return nil, &LabelError{Line: 1, Msg: "empty labels file"}
	}
	return t, nil
}

func missing(a, av, b, bv string) string {
	if av == "" {
		return a
	}
	return b
}
