// Package event holds the records of Kabuto's event stream, version 1
// (shared/spec/events.md): the customer actions, reference records, decisions
// and alerts that run through the reference brokerage, the guard, the
// watchtower, replay and the simulator, with a strict JSON Lines decoder and
// an encoder that writes exactly the fields the spec gives each type.
package event

import "time"

// Type names the kind of a record.
type Type string

// Record types of spec version 1.
const (
	TypeInstrument     Type = "instrument"
	TypeAccount        Type = "account"
	TypeBar            Type = "bar"
	TypeFill           Type = "fill"
	TypeLogin          Type = "login"
	TypeOrder          Type = "order"
	TypeWithdrawal     Type = "withdrawal"
	TypeBankChange     Type = "bank_change"
	TypeContactChange  Type = "contact_change"
	TypeFactorAdd      Type = "factor_add"
	TypeFactorRemove   Type = "factor_remove"
	TypePasswordChange Type = "password_change"
)

// Known reports whether t is a type of this version of the spec.
func (t Type) Known() bool {
	switch t {
	case TypeInstrument, TypeAccount, TypeBar, TypeFill, TypeLogin, TypeOrder,
		TypeWithdrawal, TypeBankChange, TypeContactChange, TypeFactorAdd,
		TypeFactorRemove, TypePasswordChange:
		return true
	}
	return false
}

// Action reports whether t is a customer action, which gets exactly one decision.
func (t Type) Action() bool {
	switch t {
	case TypeLogin, TypeOrder, TypeWithdrawal, TypeBankChange, TypeContactChange,
		TypeFactorAdd, TypeFactorRemove, TypePasswordChange:
		return true
	}
	return false
}

// MoneyMovement reports whether t moves money out or changes where it goes;
// such actions fail closed when no decision can be had.
func (t Type) MoneyMovement() bool { return t == TypeWithdrawal || t == TypeBankChange }

// Holding is one line of an account snapshot's holdings.
type Holding struct {
	Symbol  string `json:"symbol"`
	Qty     int64  `json:"qty"`
	CostJPY int64  `json:"cost_jpy"`
	Kind    string `json:"kind"`
}

// Record is one record of the stream. It is flat: each type uses the fields
// the spec lists for it and leaves the rest at their zero values. Fields that
// two types share in the spec (symbol, price, factors, bank_hash) share one
// Go field.
type Record struct {
	// Envelope.
	ID   string    `json:"id"`
	Type Type      `json:"type"`
	Time time.Time `json:"time"`

	// Actor context (customer actions), and the account of fills and snapshots.
	Account string `json:"account,omitempty"`
	Session string `json:"session,omitempty"`
	IP      string `json:"ip,omitempty"`
	ASN     int64  `json:"asn,omitempty"`
	Country string `json:"country,omitempty"`
	Device  string `json:"device,omitempty"`
	UA      string `json:"ua,omitempty"`
	Channel string `json:"channel,omitempty"`

	// instrument
	Symbol    string  `json:"symbol,omitempty"`
	Name      string  `json:"name,omitempty"`
	Market    string  `json:"market,omitempty"`
	Currency  string  `json:"currency,omitempty"`
	Price     float64 `json:"price,omitempty"`
	PriceJPY  float64 `json:"price_jpy,omitempty"`
	ADVShares int64   `json:"adv_shares,omitempty"`
	Lot       int64   `json:"lot,omitempty"`

	// account
	Opened         string    `json:"opened,omitempty"`
	CashJPY        int64     `json:"cash_jpy,omitempty"`
	Holdings       []Holding `json:"holdings,omitempty"`
	Factors        []string  `json:"factors,omitempty"` // also login.factors
	EmailHash      string    `json:"email_hash,omitempty"`
	PhoneHash      string    `json:"phone_hash,omitempty"`
	BankHash       string    `json:"bank_hash,omitempty"` // also withdrawal and bank_change
	ForeignEnabled bool      `json:"foreign_enabled,omitempty"`
	MarginEnabled  bool      `json:"margin_enabled,omitempty"`

	// bar
	Open   float64 `json:"open,omitempty"`
	High   float64 `json:"high,omitempty"`
	Low    float64 `json:"low,omitempty"`
	Close  float64 `json:"close,omitempty"`
	Volume int64   `json:"volume,omitempty"`

	// fill and order
	OrderID     string  `json:"order_id,omitempty"`
	Side        string  `json:"side,omitempty"`
	Qty         int64   `json:"qty,omitempty"`
	ValueJPY    int64   `json:"value_jpy,omitempty"`
	PriceType   string  `json:"price_type,omitempty"`
	LimitPrice  float64 `json:"limit_price,omitempty"`
	AccountKind string  `json:"account_kind,omitempty"`

	// login
	Method string `json:"method,omitempty"`
	OK     bool   `json:"ok,omitempty"`

	// withdrawal
	AmountJPY int64 `json:"amount_jpy,omitempty"`

	// contact_change
	Field   string `json:"field,omitempty"`
	NewHash string `json:"new_hash,omitempty"`

	// factor_add, factor_remove
	Factor string `json:"factor,omitempty"`
}

// Values of Record fields with a closed set of values.
const (
	SideBuy  = "buy"
	SideSell = "sell"

	PriceMarket = "market"
	PriceLimit  = "limit"

	KindCash   = "cash"
	KindMargin = "margin"
	KindNISA   = "nisa"

	ChannelWeb = "web"
	ChannelApp = "app"
	ChannelAPI = "api"

	FactorPassword = "password"
	FactorPasskey  = "passkey"
	FactorTOTP     = "totp"
	FactorEmailOTP = "email_otp"
	FactorSMSOTP   = "sms_otp"
)

// Decision actions.
const (
	Allow     = "allow"
	Challenge = "challenge"
	Hold      = "hold"
	Deny      = "deny"
)

// Challenge factors.
const (
	FactorPhishingResistant = "phishing_resistant"
	FactorMFA               = "mfa"
)

// Decision is the guard's answer to one customer action.
type Decision struct {
	Event   string    `json:"event"`
	Time    time.Time `json:"time"`
	Account string    `json:"account"`
	Action  string    `json:"action"`
	Factor  string    `json:"factor,omitempty"`
	Score   int       `json:"score"`
	Reasons []string  `json:"reasons"`
	Policy  string    `json:"policy"`
	// Node is the cluster node that decided (kabuto serve --cluster);
	// empty, and left out of the JSON, for a single process.
	Node string `json:"node,omitempty"`
}

// Alert actions.
const (
	AlertNone           = "none"
	AlertHaltBuys       = "halt_buys"
	AlertFreezeAccounts = "freeze_accounts"
)

// Alert is one finding of surveillance.
type Alert struct {
	Alert    string    `json:"alert"`
	Time     time.Time `json:"time"`
	Kind     string    `json:"kind"`
	Symbol   string    `json:"symbol,omitempty"`
	Accounts []string  `json:"accounts"`
	Score    int       `json:"score"`
	Action   string    `json:"action"`
	// Campaign groups alerts that share accounts, instruments or
	// infrastructure (an extension of spec version 1).
	Campaign string `json:"campaign,omitempty"`
	// Reasons are stable codes of the rules that fired (an extension).
	Reasons []string `json:"reasons,omitempty"`
}
