package notify

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/kabuto-sec/kabuto/internal/store"
)

// RefAlphabet is the alphabet of reference codes: capital letters and
// digits without the ones read alike (0/O, 1/I/L, 5/S, 8/B, 2/Z).
const RefAlphabet = "ACDEFGHJKMNPQRTUVWXY34679"

// RefLen is the number of symbols in a reference code: 25^10 ≈ 2^46
// codes, so that guessing one of even millions of stored codes takes
// billions of tries against a page that allows a handful per hour.
const RefLen = 10

// NewRef returns a new random reference code, formatted "XXXXX-XXXXX".
func NewRef() string {
	var b [RefLen]byte
	out := make([]byte, 0, RefLen+1)
	n := byte(len(RefAlphabet))
	limit := 256 - 256%int(n) // reject bytes that would bias the choice
	for i := 0; i < RefLen; {
		rand.Read(b[:])
		for _, x := range b {
			if int(x) >= limit || i == RefLen {
				continue
			}
			if i == RefLen/2 {
				out = append(out, '-')
			}
			out = append(out, RefAlphabet[x%n])
			i++
		}
	}
	return string(out)
}

// NormalizeRef returns the code a person typed in the stored form
// ("XXXXX-XXXXX"), ignoring case, spaces and dashes, or "" when it cannot
// be a reference code.
func NormalizeRef(s string) string {
	if len(s) > 64 {
		return ""
	}
	var b []byte
	for _, r := range strings.ToUpper(s) {
		switch {
		case r == ' ' || r == '-' || r == '\u3000' || r == 'ー' || r == '－':
			continue
		case r < 128 && strings.IndexByte(RefAlphabet, byte(r)) >= 0:
			b = append(b, byte(r))
		case r >= 'Ａ' && r <= 'Ｚ' || r >= '０' && r <= '９': // full-width, as Japanese keyboards type them
			c := byte(r - 'Ａ' + 'A')
			if r <= '９' {
				c = byte(r - '０' + '0')
			}
			if strings.IndexByte(RefAlphabet, c) < 0 {
				return ""
			}
			b = append(b, c)
		default:
			return ""
		}
	}
	if len(b) != RefLen {
		return ""
	}
	return string(b[:RefLen/2]) + "-" + string(b[RefLen/2:])
}

// RefInfo is what the public page may tell about a genuine code: the
// kind of message, its channel and when it was written. Nothing about the
// account.
type RefInfo struct {
	Kind    Kind
	Channel string
	Created time.Time
}

// ErrUnknownRef is returned for a code Kabuto never sent.
var ErrUnknownRef = errors.New("notify: no message carries this reference code")

// LookupRef returns what may be told about the message with reference
// code ref (as a person typed it).
func LookupRef(ctx context.Context, db *store.DB, ref string) (RefInfo, error) {
	ref = NormalizeRef(ref)
	if ref == "" {
		return RefInfo{}, ErrUnknownRef
	}
	var info RefInfo
	var kind string
	var us int64
	err := db.QueryRowContext(ctx, `SELECT kind, channel, created_us FROM outbox WHERE ref = $1`, ref).Scan(&kind, &info.Channel, &us)
	if errors.Is(err, sql.ErrNoRows) {
		return RefInfo{}, ErrUnknownRef
	}
	if err != nil {
		return RefInfo{}, err
	}
	info.Kind, info.Created = Kind(kind), store.FromMicros(us)
	return info, nil
}

// Listed is one message in a customer's message centre.
type Listed struct {
	Created time.Time
	Channel string
	Kind    Kind
	Subject string
	Ref     string
	Status  string
}

// AccountMessages returns the newest messages of every channel sent to
// account, for the customer's message centre.
func AccountMessages(ctx context.Context, db *store.DB, account string, limit int) ([]Listed, error) {
	rows, err := db.QueryContext(ctx, `SELECT created_us, channel, kind, subject, ref, status FROM outbox
		WHERE account = $1 ORDER BY created_us DESC, id LIMIT $2`, account, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Listed
	for rows.Next() {
		var l Listed
		var us int64
		var kind string
		if err := rows.Scan(&us, &l.Channel, &kind, &l.Subject, &l.Ref, &l.Status); err != nil {
			return nil, err
		}
		l.Created, l.Kind = store.FromMicros(us), Kind(kind)
		out = append(out, l)
	}
	return out, rows.Err()
}

// KindText names a kind of message for a customer, in Japanese or English.
func KindText(k Kind, lang string) string {
	t, ok := templates[locale(lang)][k]
	if !ok {
		if lang == "en" {
			return "a message"
		}
		return "お知らせ"
	}
	var b strings.Builder
	t.subject.Execute(&b, map[string]string{})
	return b.String()
}

// ChannelText names a channel for a customer.
func ChannelText(ch, lang string) string {
	en := map[string]string{ChannelEmail: "email", ChannelSMS: "SMS text message", ChannelWebhook: "app notification"}
	ja := map[string]string{ChannelEmail: "メール", ChannelSMS: "SMS（ショートメッセージ）", ChannelWebhook: "アプリの通知"}
	if lang == "en" {
		return en[ch]
	}
	return ja[ch]
}

// refText is the paragraph every message ends with: its reference code
// and how to check it, without a link.
var refText = map[string]string{
	"ja": "参照番号: %s\n" +
		"このメッセージが本当に当社から送られたものかは、いつもお使いのアプリか、ご自分で入力した当社のアドレスで開いたページの「当社からのメッセージか確かめる」に、この参照番号を入力すると確かめられます。ログインは必要ありません。",
	"en": "Reference: %s\n" +
		"To check that this message really came from us, open the app you always use, or type our address yourself, choose \"Did we send this?\" and enter this reference. No sign-in is needed.",
}

// smsText is an SMS: short, the reference code, no link.
var smsText = map[string]string{
	"ja": "[兜証券] %s。参照番号 %s（当社ページの「当社からのメッセージか確かめる」で確認できます）。当社のSMSにリンクはありません。",
	"en": "[Kabuto Securities] %s. Reference %s (check it under \"Did we send this?\" on our site). Our texts never contain links.",
}
