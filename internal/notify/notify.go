// Package notify tells customers what happened to their account: sign-ins
// (with device and place), failed attempts, locks, authenticator, contact
// and bank changes, withdrawals and unusual orders. Messages are rendered
// from Japanese and English templates and written to a transactional
// outbox in the same database transaction as the action they report, so a
// message exists if and only if the action committed. A Worker delivers
// the outbox by email (SMTP) and signed webhooks, with retries and
// exponential backoff.
//
// No message ever carries a link: customers are told to open the app or
// type the address themselves, because phishing mail imitates exactly
// these messages. Values placed into messages are cleaned of anything
// that looks like a link.
package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"text/template"
	"time"
	"unicode/utf8"

	"github.com/kabuto-sec/kabuto/internal/store"
)

// Kind names what a message reports.
type Kind string

// Kinds of message.
const (
	KindSignIn       Kind = "sign_in"
	KindSignInFailed Kind = "sign_in_failed"
	KindLocked       Kind = "locked"
	KindUnlocked     Kind = "unlocked"
	KindSelfLock     Kind = "self_lock"
	KindFactorAdded  Kind = "factor_added"
	KindFactorRemove Kind = "factor_removed"
	KindContact      Kind = "contact_changed"
	KindBank         Kind = "bank_changed"
	KindWithdrawal   Kind = "withdrawal"
	KindUnusualOrder Kind = "unusual_order"
	KindCode         Kind = "one_time_code"
	KindHeld         Kind = "held_for_review"
)

// Kinds lists every kind, for tests and documentation.
var Kinds = []Kind{KindSignIn, KindSignInFailed, KindLocked, KindUnlocked, KindSelfLock, KindFactorAdded, KindFactorRemove,
	KindContact, KindBank, KindWithdrawal, KindUnusualOrder, KindCode, KindHeld}

// Message is one notification to one customer.
type Message struct {
	Account string
	To      string // email address
	Phone   string // mobile number for SMS texts ("" for none)
	Locale  string // "ja" or "en"; anything else is "ja"
	Kind    Kind
	// Data fills the template: Name, Time, Device, Place, Amount, Bank,
	// Field, Factor, Code, Purpose, Count, Scope, Order, Reason… Values are
	// cleaned of links before rendering.
	Data map[string]string
}

// Execer is a *sql.Tx or *sql.DB.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Outbox writes messages for later delivery.
type Outbox struct {
	// Webhook, when true, also queues every message for the webhook channel.
	Webhook bool
	// SMS, when true, also queues a short text of every message that has a
	// phone number.
	SMS bool
}

// Enqueue renders m and writes it to the outbox through ex, normally the
// transaction of the action the message reports: one row per channel
// (email when m.To is set, SMS when m.Phone is set and o.SMS, the webhook
// when o.Webhook), each with a reference code of its own at its end.
func (o *Outbox) Enqueue(ctx context.Context, ex Execer, m Message, now time.Time) error {
	subject, body, err := Render(m)
	if err != nil {
		return err
	}
	type channel struct{ ch, addr string }
	var channels []channel
	if m.To != "" {
		channels = append(channels, channel{ChannelEmail, m.To})
	}
	if o != nil && o.SMS && m.Phone != "" {
		channels = append(channels, channel{ChannelSMS, m.Phone})
	}
	if o != nil && o.Webhook {
		channels = append(channels, channel{ChannelWebhook, "webhook"})
	}
	loc := locale(m.Locale)
	for _, c := range channels {
		ref := NewRef()
		text := body + "\n\n" + fmt.Sprintf(refText[loc], ref)
		if c.ch == ChannelSMS {
			text = fmt.Sprintf(smsText[loc], subject, ref)
		}
		_, err := ex.ExecContext(ctx, `INSERT INTO outbox (id, account, channel, address, kind, locale, subject, body, status, next_us, created_us, ref)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $10, $11)`,
			newID(), m.Account, c.ch, c.addr, string(m.Kind), loc, subject, text, store.Micros(now), store.Micros(now), ref)
		if err != nil {
			return fmt.Errorf("notify: enqueue %s: %w", m.Kind, err)
		}
	}
	return nil
}

// Channels of delivery.
const (
	ChannelEmail   = "email"
	ChannelSMS     = "sms"
	ChannelWebhook = "webhook"
)

func newID() string {
	var b [12]byte
	rand.Read(b[:])
	return "N" + hex.EncodeToString(b[:])
}

func locale(l string) string {
	if l == "en" {
		return "en"
	}
	return "ja"
}

// linkish matches anything a mail client might turn into a link: a
// scheme, "www.", or a dotted host name.
var linkish = regexp.MustCompile(`(?i)([a-z][a-z0-9+.\-]*://\S*)|((mailto|tel|sms|javascript|data|intent):\S*)|(www\.\S*)|(\S+\.(com|net|org|jp|io|co|info|xyz|top|cn|hk|ru|app|dev|link|site|online|me)\b\S*)`)

// Clean returns s as a single line of at most 120 characters with
// anything that looks like a link removed, so data an attacker controls
// (a user agent, a device name) cannot put a link into a message.
func Clean(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	s = linkish.ReplaceAllString(s, "…")
	s = strings.ReplaceAll(s, "://", " ")
	if utf8.RuneCountInString(s) > 120 {
		s = string([]rune(s)[:120]) + "…"
	}
	return strings.TrimSpace(s)
}

// Render returns the subject and body of m in its locale.
func Render(m Message) (subject, body string, err error) {
	t, ok := templates[locale(m.Locale)][m.Kind]
	if !ok {
		return "", "", fmt.Errorf("notify: no template for %q", m.Kind)
	}
	data := map[string]string{}
	for k, v := range m.Data {
		data[k] = Clean(v)
	}
	var sb, bb bytes.Buffer
	if err := t.subject.Execute(&sb, data); err != nil {
		return "", "", err
	}
	if err := t.body.Execute(&bb, data); err != nil {
		return "", "", err
	}
	footer := footers[locale(m.Locale)]
	return sb.String(), strings.TrimSpace(bb.String()) + "\n\n" + footer, nil
}

type tmpl struct{ subject, body *template.Template }

var templates = map[string]map[Kind]tmpl{}

func init() {
	for loc, set := range templateText {
		templates[loc] = map[Kind]tmpl{}
		for k, st := range set {
			templates[loc][k] = tmpl{
				subject: template.Must(template.New("s").Option("missingkey=zero").Parse(st[0])),
				body:    template.Must(template.New("b").Option("missingkey=zero").Parse(st[1])),
			}
		}
	}
}

// TemplateText returns the raw template text of every kind in every
// locale, for tests.
func TemplateText() []string {
	var out []string
	for _, set := range templateText {
		for _, st := range set {
			out = append(out, st[0], st[1])
		}
	}
	out = append(out, footers["ja"], footers["en"], refText["ja"], refText["en"], smsText["ja"], smsText["en"])
	return out
}

var footers = map[string]string{
	"ja": "このメールには、ログインやパスワード入力のためのリンクを載せていません。リンク付きのメールやSMSは偽物です。\n" +
		"心当たりのない操作があったときは、いつもお使いのアプリか、ご自分で入力したアドレスから開いたページで「取引・ログインをすべて停止」を選んでください。\n" +
		"兜証券（デモ）",
	"en": "This message contains no links to sign in or to enter a password. Any such email or SMS is fake.\n" +
		"If you do not recognise this, open the app you always use, or type our address yourself, and choose \"Stop all trading and sign-in\".\n" +
		"Kabuto Securities (demo)",
}

// templateText holds subject and body per kind and locale.
var templateText = map[string]map[Kind][2]string{
	"ja": {
		KindSignIn: {"ログインがありました", `{{.Name}} 様

{{.Time}} にお客様の口座へのログインがありました。
端末: {{.Device}}
場所: {{.Place}}
認証: {{.Factor}}`},
		KindSignInFailed: {"ログインに失敗した試行がありました", `{{.Name}} 様

{{.Time}} に、お客様の口座へのログインが {{.Count}} 回続けて失敗しました。
端末: {{.Device}}
場所: {{.Place}}
あと {{.Left}} 回失敗すると、パスワードでのログインが自動的にロックされます。パスキーでのログインはそのままご利用いただけます。`},
		KindLocked: {"パスワードでのログインをロックしました", `{{.Name}} 様

{{.Time}} に、パスワードの誤りが {{.Count}} 回続いたため、パスワードでのログインをロックしました。
最後の試行の場所: {{.Place}}（{{.Device}}）
パスキーをお持ちの場合は、パスキーでログインしてロックを解除できます。パスキーをお持ちでない場合は、ログイン画面の「ロックの解除」から、ご登録のメールアドレスに届く確認コードで本人確認をしてください。`},
		KindUnlocked: {"ロックを解除しました", `{{.Name}} 様

{{.Time}} に、本人確認（{{.Factor}}）のうえ口座のロックを解除しました。
端末: {{.Device}}
場所: {{.Place}}`},
		KindSelfLock: {"口座をロックしました", `{{.Name}} 様

{{.Time}} に、お客様のご依頼で口座をロックしました。
範囲: {{.Scope}}
場所: {{.Place}}（{{.Device}}）
解除にはパスキー（お持ちでない場合は本人確認）が必要です。`},
		KindFactorAdded: {"認証方法が追加されました", `{{.Name}} 様

{{.Time}} に、認証方法「{{.Factor}}」が追加されました。
端末: {{.Device}}
場所: {{.Place}}
お心当たりがない場合、第三者がログインに使おうとしている可能性があります。すぐに口座をロックしてください。`},
		KindFactorRemove: {"認証方法が削除されました", `{{.Name}} 様

{{.Time}} に、認証方法「{{.Factor}}」が削除されました。
端末: {{.Device}}
場所: {{.Place}}`},
		KindContact: {"ご登録の連絡先が変更されました", `{{.Name}} 様

{{.Time}} に、ご登録の{{.Field}}が変更されました。このお知らせは変更前の連絡先にお送りしています。
端末: {{.Device}}
場所: {{.Place}}
お心当たりがない場合は、すぐに口座をロックしてください。`},
		KindBank: {"出金先口座が変更されました", `{{.Name}} 様

{{.Time}} に、出金先の銀行口座が {{.Bank}} に変更されました。
端末: {{.Device}}
場所: {{.Place}}
お心当たりがない場合は、すぐに口座をロックしてください。`},
		KindHeld: {"お取引を確認しています", `{{.Name}} 様

{{.Time}} にご依頼の {{.Order}}（{{.Amount}}）は、お客様の資産を守るため、当社の担当者が確認するまで実行を保留しています。
確認が終わりしだい、結果をお知らせします。その間、資金やお預かり資産が動くことはありません。
端末: {{.Device}}
場所: {{.Place}}
お心当たりがない場合は、すぐに口座をロックし、お電話でご連絡ください。`},
		KindWithdrawal: {"出金を受け付けました", `{{.Name}} 様

{{.Time}} に {{.Amount}} の出金を受け付けました。
出金先: {{.Bank}}
状態: {{.Status}}
端末: {{.Device}}
場所: {{.Place}}`},
		KindUnusualOrder: {"いつもと違う注文がありました", `{{.Name}} 様

{{.Time}} に、普段のお取引と異なる注文がありました。
注文: {{.Order}}
金額: {{.Amount}}
端末: {{.Device}}
場所: {{.Place}}
お心当たりがない場合は、すぐに口座をロックしてください。`},
		KindCode: {"確認コード", `{{.Name}} 様

確認コード: {{.Code}}
用途: {{.Purpose}}
操作した端末: {{.Device}}（{{.Place}}）
有効期限は10分です。このコードを当社の担当者を名乗る人や、他のサイトに伝えないでください。上の端末と場所に心当たりがない場合は、入力しないでください。`},
	},
	"en": {
		KindSignIn: {"New sign-in to your account", `Dear {{.Name}},

Your account was signed in to at {{.Time}}.
Device: {{.Device}}
Place: {{.Place}}
Verified with: {{.Factor}}`},
		KindSignInFailed: {"Failed sign-in attempts", `Dear {{.Name}},

At {{.Time}} there were {{.Count}} failed sign-in attempts in a row on your account.
Device: {{.Device}}
Place: {{.Place}}
After {{.Left}} more failures, password sign-in will be locked automatically. Passkey sign-in keeps working.`},
		KindLocked: {"Password sign-in locked", `Dear {{.Name}},

At {{.Time}} password sign-in to your account was locked after {{.Count}} wrong passwords in a row.
Last attempt from: {{.Place}} ({{.Device}})
If you have a passkey, sign in with it to unlock. If not, choose "Unlock" on the sign-in page and confirm with the code sent to your registered email address.`},
		KindUnlocked: {"Your account was unlocked", `Dear {{.Name}},

At {{.Time}} your account was unlocked after verification ({{.Factor}}).
Device: {{.Device}}
Place: {{.Place}}`},
		KindSelfLock: {"Your account is locked", `Dear {{.Name}},

At {{.Time}} your account was locked at your request.
Scope: {{.Scope}}
Place: {{.Place}} ({{.Device}})
Unlocking needs your passkey (or verification if you have none).`},
		KindFactorAdded: {"A sign-in method was added", `Dear {{.Name}},

At {{.Time}} the sign-in method "{{.Factor}}" was added to your account.
Device: {{.Device}}
Place: {{.Place}}
If this was not you, someone may be preparing to sign in as you: lock your account now.`},
		KindFactorRemove: {"A sign-in method was removed", `Dear {{.Name}},

At {{.Time}} the sign-in method "{{.Factor}}" was removed from your account.
Device: {{.Device}}
Place: {{.Place}}`},
		KindContact: {"Your contact details changed", `Dear {{.Name}},

At {{.Time}} your registered {{.Field}} was changed. We are sending this to your previous contact details.
Device: {{.Device}}
Place: {{.Place}}
If this was not you, lock your account now.`},
		KindBank: {"Your withdrawal bank account changed", `Dear {{.Name}},

At {{.Time}} your withdrawal bank account was changed to {{.Bank}}.
Device: {{.Device}}
Place: {{.Place}}
If this was not you, lock your account now.`},
		KindHeld: {"We are reviewing your request", `Dear {{.Name}},

At {{.Time}} you asked for {{.Order}} ({{.Amount}}). To protect your account, it is on hold until one of our staff has reviewed it.
We will tell you the outcome as soon as the review is done. Until then no money or securities move.
Device: {{.Device}}
Place: {{.Place}}
If this was not you, lock your account now and call us.`},
		KindWithdrawal: {"Withdrawal received", `Dear {{.Name}},

At {{.Time}} we received a withdrawal of {{.Amount}}.
To: {{.Bank}}
Status: {{.Status}}
Device: {{.Device}}
Place: {{.Place}}`},
		KindUnusualOrder: {"An unusual order was placed", `Dear {{.Name}},

At {{.Time}} an order unlike your usual trading was placed.
Order: {{.Order}}
Value: {{.Amount}}
Device: {{.Device}}
Place: {{.Place}}
If this was not you, lock your account now.`},
		KindCode: {"Your confirmation code", `Dear {{.Name}},

Confirmation code: {{.Code}}
For: {{.Purpose}}
Requested from: {{.Device}} ({{.Place}})
It expires in 10 minutes. Never tell it to anyone who says they are from us, and never enter it on any other site. If you do not recognise the device and place above, do not enter it.`},
	},
}
