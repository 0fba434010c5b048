// Package apikey issues and checks the API keys that the brokerage's own
// systems use to call Kabuto. Only a SHA-256 hash of each key is stored;
// the key itself is shown once, when it is created.
package apikey

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kabuto-sec/kabuto/internal/clock"
	"github.com/kabuto-sec/kabuto/internal/store"
)

// Scopes an API key may hold.
const (
	ScopeBroker = "broker" // act on accounts of the reference brokerage
	ScopeEvents = "events" // send records for decisions (integration mode)
	ScopeAdmin  = "admin"  // analyst and operator actions
)

// Key is a stored API key, without its secret.
type Key struct {
	ID      string
	Name    string
	Scopes  []string
	Created time.Time
	// LastUsed is when the key last authenticated a request, to within
	// CacheFor (zero: never); Revoked when it was revoked (zero: live).
	// Only List fills them.
	LastUsed, Revoked time.Time
}

// Has reports whether k holds scope.
func (k *Key) Has(scope string) bool { return slices.Contains(k.Scopes, scope) }

// ErrInvalid means the key is unknown or revoked.
var ErrInvalid = errors.New("invalid or revoked API key")

// Store keeps API keys. Checked keys are cached for a few seconds, so a
// busy caller does not cost a database read per request; a revocation
// made through this Store takes effect at once, one made elsewhere within
// CacheFor.
type Store struct {
	// Clock tells the time of the checks against expiry and the key
	// cache (nil: clock.Real).
	Clock clock.Clock
	db    *store.DB
	mu    sync.Mutex
	cache map[string]cached
}

type cached struct {
	k     *Key
	until time.Time
}

// CacheFor is how long a checked key is trusted without asking the database.
const CacheFor = 5 * time.Second

// New returns a Store on db.
func New(db *store.DB) *Store { return &Store{db: db, cache: map[string]cached{}} }

func hash(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// Create makes a key and returns its secret, which is not stored.
func (s *Store) Create(ctx context.Context, name string, scopes []string, now time.Time) (secret string, k *Key, err error) {
	var b [24]byte
	rand.Read(b[:])
	return s.CreateWithSecret(ctx, name, "kb_"+base64.RawURLEncoding.EncodeToString(b[:]), scopes, now)
}

// CreateWithSecret stores a key with a secret chosen by the caller (the
// demo's well-known local key). The secret must start with "kb_".
func (s *Store) CreateWithSecret(ctx context.Context, name, secret string, scopes []string, now time.Time) (string, *Key, error) {
	if !strings.HasPrefix(secret, "kb_") || len(secret) < 12 || len(secret) > 100 {
		return "", nil, errors.New("an API key secret starts with kb_ and has 12 to 100 characters")
	}
	var idb [6]byte
	rand.Read(idb[:])
	k := &Key{ID: "key_" + hex.EncodeToString(idb[:]), Name: name, Scopes: scopes, Created: now}
	_, err := s.db.ExecContext(ctx, `INSERT INTO api_keys (id, name, key_hash, scopes, created_us) VALUES ($1, $2, $3, $4, $5)`,
		k.ID, name, hash(secret), strings.Join(scopes, " "), store.Micros(now))
	if err != nil {
		return "", nil, err
	}
	return secret, k, nil
}

// Check returns the key whose secret this is.
func (s *Store) Check(ctx context.Context, secret string) (*Key, error) {
	if !strings.HasPrefix(secret, "kb_") || len(secret) > 100 {
		return nil, ErrInvalid
	}
	h := hash(secret)
	now := s.now()
	s.mu.Lock()
	c, ok := s.cache[h]
	s.mu.Unlock()
	if ok && now.Before(c.until) {
		return c.k, nil
	}
	k, err := s.check(ctx, h, now)
	if err == nil {
		s.mu.Lock()
		if len(s.cache) > 10000 {
			clear(s.cache)
		}
		s.cache[h] = cached{k, now.Add(CacheFor)}
		s.mu.Unlock()
	}
	return k, err
}

func (s *Store) check(ctx context.Context, h string, now time.Time) (*Key, error) {
	var k Key
	var scopes string
	var created, revoked int64
	err := s.db.QueryRowContext(ctx, `SELECT id, name, scopes, created_us, revoked_us FROM api_keys WHERE key_hash = $1`, h).
		Scan(&k.ID, &k.Name, &scopes, &created, &revoked)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && revoked != 0) {
		return nil, ErrInvalid
	}
	if err != nil {
		return nil, err
	}
	k.Scopes, k.Created = strings.Fields(scopes), store.FromMicros(created)
	// Once per CacheFor per key and process: when it was last used.
	if _, err := s.db.ExecContext(ctx, `UPDATE api_keys SET last_used_us = $1 WHERE id = $2 AND last_used_us < $1`, store.Micros(now), k.ID); err != nil {
		return nil, err
	}
	return &k, nil
}

// List returns every key, revoked ones too, oldest first: ids, names,
// scopes and times, never a secret or its hash.
func (s *Store) List(ctx context.Context) ([]Key, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, name, scopes, created_us, last_used_us, revoked_us FROM api_keys ORDER BY created_us, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Key
	for rows.Next() {
		var k Key
		var scopes string
		var created, used, revoked int64
		if err := rows.Scan(&k.ID, &k.Name, &scopes, &created, &used, &revoked); err != nil {
			return nil, err
		}
		k.Scopes, k.Created = strings.Fields(scopes), store.FromMicros(created)
		if used != 0 {
			k.LastUsed = store.FromMicros(used)
		}
		if revoked != 0 {
			k.Revoked = store.FromMicros(revoked)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// ErrUnknown means no key has the id given.
var ErrUnknown = errors.New("no API key with this id")

// Revoke revokes the key with the given id; ErrUnknown if there is none.
func (s *Store) Revoke(ctx context.Context, id string, now time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE api_keys SET revoked_us = $1 WHERE id = $2`, store.Micros(now), id)
	s.mu.Lock()
	clear(s.cache)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return ErrUnknown
	}
	return nil
}

// RevokeNamed revokes every live key named name (an analyst's personal
// keys, when the analyst is disabled) and reports how many it revoked.
func (s *Store) RevokeNamed(ctx context.Context, name string, now time.Time) (int, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE api_keys SET revoked_us = $1 WHERE name = $2 AND revoked_us = 0`, store.Micros(now), name)
	s.mu.Lock()
	clear(s.cache)
	s.mu.Unlock()
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

func (s *Store) now() time.Time {
	if s.Clock == nil {
		return clock.Real{}.Now()
	}
	return s.Clock.Now()
}
