// Package session keeps the customer portal's sessions on the server. A
// browser holds only a random token in an HttpOnly, SameSite=Lax cookie
// (named with the __Host- prefix and Secure under TLS); the database holds
// the token's hash, the account, the assurance level, when each factor
// was last proven, and the device and network the session began on. A
// new token is issued at sign-in and at every step-up; sessions end after
// a period of inactivity and at an absolute limit.
//
// When a request arrives under a session's cookie from another network,
// ASN, country or user agent than the one it began on (the infostealer
// pattern: a stolen cookie replayed elsewhere) the session is marked
// jumped, and sensitive actions then need a fresh proof of the customer's
// strongest factor.
package session

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/kabuto-sec/kabuto/internal/clock"
	"github.com/kabuto-sec/kabuto/internal/store"
)

// Strengths of a factor or of a session, weakest first.
const (
	StrengthNone              = ""
	StrengthPassword          = "password"
	StrengthMFA               = "mfa"
	StrengthPhishingResistant = "phishing_resistant"
)

// Rank orders strengths: higher is stronger.
func Rank(s string) int {
	switch s {
	case StrengthPassword:
		return 1
	case StrengthMFA:
		return 2
	case StrengthPhishingResistant:
		return 3
	}
	return 0
}

// Client is the device and network context of a request.
type Client struct {
	IP      string
	Network string // the IP's /24 (IPv4) or /48 (IPv6)
	ASN     int64
	Country string
	UA      string
	Device  string // the browser's stable device cookie
}

// NetworkOf returns the /24 of an IPv4 address or the /48 of an IPv6 one.
func NetworkOf(ip string) string {
	p := net.ParseIP(ip)
	if p == nil {
		return ip
	}
	if v4 := p.To4(); v4 != nil {
		return (&net.IPNet{IP: v4.Mask(net.CIDRMask(24, 32)), Mask: net.CIDRMask(24, 32)}).String()
	}
	return (&net.IPNet{IP: p.Mask(net.CIDRMask(48, 128)), Mask: net.CIDRMask(48, 128)}).String()
}

// Jump says what changed between the context a session began on and c,
// or "" when nothing did.
func Jump(from, c Client) string {
	var what []string
	if from.Network != c.Network {
		what = append(what, "network")
	}
	if from.ASN != c.ASN {
		what = append(what, "asn")
	}
	if from.Country != c.Country {
		what = append(what, "country")
	}
	if from.UA != c.UA {
		what = append(what, "user_agent")
	}
	return strings.Join(what, ",")
}

// Session is one signed-in browser.
type Session struct {
	ID        string // public handle, e.g. in the actor context and the session list
	Account   string
	Created   time.Time
	Seen      time.Time
	Assurance string               // strength of the sign-in
	Proofs    map[string]time.Time // factor → when last proven in this session
	Start     Client               // context at sign-in
	Jumped    time.Time            // when the context first jumped; zero if never
	Jump      string               // what changed
	Revoked   time.Time
	// Token is set only when the session was just created or rotated: the
	// cookie value to send.
	Token string
}

// ProvenSince reports whether factor was proven at or after t.
func (s *Session) ProvenSince(factor string, t time.Time) bool {
	p, ok := s.Proofs[factor]
	return ok && !p.Before(t)
}

// Config configures a Store.
type Config struct {
	DB         *store.DB
	Now        func() time.Time // nil: clock.Real
	Inactivity time.Duration    // default 30 min
	Absolute   time.Duration    // default 12 h
}

// Store keeps sessions.
type Store struct {
	cfg Config
}

// New returns a Store.
func New(c Config) *Store {
	if c.Now == nil {
		c.Now = clock.Real{}.Now
	}
	if c.Inactivity == 0 {
		c.Inactivity = 30 * time.Minute
	}
	if c.Absolute == 0 {
		c.Absolute = 12 * time.Hour
	}
	return &Store{cfg: c}
}

// Errors of Lookup.
var (
	ErrNone    = errors.New("session: no session")
	ErrExpired = errors.New("session: expired")
)

func token() (raw, hash string) {
	var b [32]byte
	rand.Read(b[:])
	raw = base64.RawURLEncoding.EncodeToString(b[:])
	return raw, hashToken(raw)
}

func hashToken(raw string) string {
	h := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(h[:])
}

// NewID returns a fresh public session id. The sign-in decides the login
// record under this id before the session exists, so the guard ties the
// factors proven at sign-in to every later action of the session.
func NewID() string {
	var idb [9]byte
	rand.Read(idb[:])
	return "S" + hex.EncodeToString(idb[:])
}

// Create starts a session for account with the factors just proven. id is
// the public id from NewID, or "" for a new one.
func (st *Store) Create(ctx context.Context, id, account, assurance string, factors []string, c Client) (*Session, error) {
	now := st.cfg.Now()
	raw, h := token()
	if id == "" {
		id = NewID()
	}
	s := &Session{ID: id, Account: account, Created: now, Seen: now, Assurance: assurance,
		Proofs: map[string]time.Time{}, Start: c, Token: raw}
	for _, f := range factors {
		s.Proofs[f] = now
	}
	pj, _ := json.Marshal(proofsOut(s.Proofs))
	_, err := st.cfg.DB.ExecContext(ctx, `INSERT INTO sessions (id, token_hash, account, created_us, seen_us, rotated_us, assurance, proofs, ip, network, asn, country, ua, device)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		s.ID, h, account, store.Micros(now), store.Micros(now), store.Micros(now), assurance, string(pj), c.IP, c.Network, c.ASN, c.Country, c.UA, c.Device)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func proofsOut(p map[string]time.Time) map[string]int64 {
	out := map[string]int64{}
	for k, v := range p {
		out[k] = store.Micros(v)
	}
	return out
}

const cols = `id, account, created_us, seen_us, assurance, proofs, ip, network, asn, country, ua, device, jumped_us, jump, revoked_us`

func scan(row interface{ Scan(...any) error }) (*Session, error) {
	var s Session
	var created, seen, jumped, revoked int64
	var proofs string
	err := row.Scan(&s.ID, &s.Account, &created, &seen, &s.Assurance, &proofs, &s.Start.IP, &s.Start.Network, &s.Start.ASN, &s.Start.Country,
		&s.Start.UA, &s.Start.Device, &jumped, &s.Jump, &revoked)
	if err != nil {
		return nil, err
	}
	s.Created, s.Seen = store.FromMicros(created), store.FromMicros(seen)
	if jumped != 0 {
		s.Jumped = store.FromMicros(jumped)
	}
	if revoked != 0 {
		s.Revoked = store.FromMicros(revoked)
	}
	var p map[string]int64
	json.Unmarshal([]byte(proofs), &p)
	s.Proofs = map[string]time.Time{}
	for k, v := range p {
		s.Proofs[k] = store.FromMicros(v)
	}
	return &s, nil
}

// Lookup returns the live session of a cookie token seen from c, marking
// it seen now and, when the context jumped, jumped. It returns ErrNone for
// an unknown or revoked token and ErrExpired for one past its timeouts.
func (st *Store) Lookup(ctx context.Context, raw string, c Client) (*Session, error) {
	if raw == "" || len(raw) > 100 {
		return nil, ErrNone
	}
	s, err := scan(st.cfg.DB.QueryRowContext(ctx, `SELECT `+cols+` FROM sessions WHERE token_hash = $1`, hashToken(raw)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNone
	}
	if err != nil {
		return nil, err
	}
	if !s.Revoked.IsZero() {
		return nil, ErrNone
	}
	now := st.cfg.Now()
	if now.Sub(s.Seen) > st.cfg.Inactivity || now.Sub(s.Created) > st.cfg.Absolute {
		st.cfg.DB.ExecContext(ctx, `UPDATE sessions SET revoked_us = $1 WHERE id = $2 AND revoked_us = 0`, store.Micros(now), s.ID)
		return nil, ErrExpired
	}
	s.Seen = now
	if j := Jump(s.Start, c); j != "" && s.Jumped.IsZero() {
		s.Jumped, s.Jump = now, j
		_, err = st.cfg.DB.ExecContext(ctx, `UPDATE sessions SET seen_us = $1, jumped_us = $1, jump = $2 WHERE id = $3`, store.Micros(now), j, s.ID)
	} else {
		_, err = st.cfg.DB.ExecContext(ctx, `UPDATE sessions SET seen_us = $1 WHERE id = $2`, store.Micros(now), s.ID)
	}
	return s, err
}

// Prove records that factor was proven now in s, raises its assurance to
// at least strength, and rotates its token (s.Token is the new cookie
// value). A proof of the customer's strongest factor made from the
// current context clears a jump and makes the current context the
// session's own.
func (st *Store) Prove(ctx context.Context, s *Session, factor, strength string, c *Client) error {
	now := st.cfg.Now()
	s.Proofs[factor] = now
	if Rank(strength) > Rank(s.Assurance) {
		s.Assurance = strength
	}
	raw, h := token()
	pj, _ := json.Marshal(proofsOut(s.Proofs))
	q := `UPDATE sessions SET token_hash = $1, rotated_us = $2, proofs = $3, assurance = $4 WHERE id = $5 AND revoked_us = 0`
	args := []any{h, store.Micros(now), string(pj), s.Assurance, s.ID}
	if c != nil {
		s.Start, s.Jumped, s.Jump = *c, time.Time{}, ""
		q = `UPDATE sessions SET token_hash = $1, rotated_us = $2, proofs = $3, assurance = $4, ip = $5, network = $6, asn = $7, country = $8, ua = $9, device = $10, jumped_us = 0, jump = ''
			WHERE id = $11 AND revoked_us = 0`
		args = []any{h, store.Micros(now), string(pj), s.Assurance, c.IP, c.Network, c.ASN, c.Country, c.UA, c.Device, s.ID}
	}
	res, err := st.cfg.DB.ExecContext(ctx, q, args...)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNone
	}
	s.Token = raw
	return nil
}

// Revoke ends session id of account.
func (st *Store) Revoke(ctx context.Context, account, id string) error {
	_, err := st.cfg.DB.ExecContext(ctx, `UPDATE sessions SET revoked_us = $1 WHERE id = $2 AND account = $3 AND revoked_us = 0`, store.Micros(st.cfg.Now()), id, account)
	return err
}

// RevokeAll ends every session of account except keep (which may be "").
func (st *Store) RevokeAll(ctx context.Context, ex interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, account, keep string) error {
	_, err := ex.ExecContext(ctx, `UPDATE sessions SET revoked_us = $1 WHERE account = $2 AND id <> $3 AND revoked_us = 0`, store.Micros(st.cfg.Now()), account, keep)
	return err
}

// List returns the account's live sessions, newest first.
func (st *Store) List(ctx context.Context, account string) ([]*Session, error) {
	now := st.cfg.Now()
	rows, err := st.cfg.DB.QueryContext(ctx, `SELECT `+cols+` FROM sessions WHERE account = $1 AND revoked_us = 0 AND seen_us > $2 AND created_us > $3 ORDER BY created_us DESC LIMIT 50`,
		account, store.Micros(now.Add(-st.cfg.Inactivity)), store.Micros(now.Add(-st.cfg.Absolute)))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Session
	for rows.Next() {
		s, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, rows.Err()
}

// Cookie names: with the __Host- prefix (which browsers accept only with
// Secure, path / and no domain) under TLS, plain otherwise (a development
// server on http://localhost).
func CookieName(secure bool, base string) string {
	if secure {
		return "__Host-" + base
	}
	return base
}
