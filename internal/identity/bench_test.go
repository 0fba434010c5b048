package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kabuto-sec/kabuto/internal/clock"
	"github.com/kabuto-sec/kabuto/internal/store/storetest"
)

// BenchmarkECDSAP256Verify is the baseline: one bare P-256 signature check.
func BenchmarkECDSAP256Verify(b *testing.B) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	h := sha256.Sum256([]byte("authenticatorData||clientDataHash"))
	sig, _ := ecdsa.SignASN1(rand.Reader, k, h[:])
	for b.Loop() {
		if !ecdsa.VerifyASN1(&k.PublicKey, h[:], sig) {
			b.Fatal("bad signature")
		}
	}
}

// BenchmarkPasskeySignIn is the server's whole cost of a discoverable
// passkey sign-in: begin (challenge, stored ceremony) and finish (consume
// the ceremony, parse, look the user up, verify RP ID, origin, flags and
// signature, store the new sign count), on SQLite. The authenticator's
// signing happens outside the timer.
func BenchmarkPasskeySignIn(b *testing.B) {
	db := storetest.SQLite(b)
	c := clock.NewFake(time.Date(2025, 4, 1, 9, 0, 0, 0, clock.JST))
	s := newService(b, db, c, nil)
	addAccount(b, s, db, "C0000001", "right-password-9")
	k := newSoftKey(b, s, "C0000001")
	ctx := context.Background()
	for b.Loop() {
		id, opts, err := s.BeginSignIn(ctx, "dev")
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		body := assert(b, k, opts, origin)
		b.StartTimer()
		if _, err := s.FinishSignIn(ctx, "dev", id, body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPasswordSignIn measures password sign-ins per second through
// the bounded pool at the OWASP argon2id parameters (19 MiB, t=2, p=1).
func BenchmarkPasswordSignIn(b *testing.B) {
	db := storetest.SQLite(b)
	c := clock.NewFake(time.Date(2025, 4, 1, 9, 0, 0, 0, clock.JST))
	s := newService(b, db, c, func(cfg *Config) { cfg.Argon = OWASP })
	const n = 64
	for i := range n {
		id := fmt.Sprintf("C%07d", i+1)
		_, err := db.ExecContext(context.Background(), `INSERT INTO accounts (id, name, locale, email, phone, email_hash, phone_hash, bank_label, bank_hash, opened, cash_jpy, created_us)
			VALUES ($1, 'T', 'ja', 'x@example.jp', '0', 'e', 'p', 'b', 'b', '2020-01-01', 0, 0)`, id)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Enrol(context.Background(), nil, id, "", Hash("right-password-9", OWASP)); err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Int64
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := fmt.Sprintf("C%07d", next.Add(1)%n+1)
			if err := s.CheckPassword(context.Background(), id, "right-password-9", home); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "signins/s")
}
