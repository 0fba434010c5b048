package risk

import (
	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
)

// features is the flat set of values one decision is made from. The engine
// fills it under the account's lock; policies read it through variables.
type features struct {
	// action
	typ     string
	channel string
	hour    int64

	// login
	loginOK, loginPasskey bool
	loginMethod           string
	loginFactors          int64

	// order
	side                               string
	buy, sell                          bool
	value, qty                         int64
	margin, nisa, marketOrder          bool
	advShare, valueRatio, limitPremium float64
	retry                              bool
	// withdrawal
	amount    int64
	knownBank bool
	cashShare float64
	// changes
	field, factor string

	// account
	acctKnown, frozen                                 bool
	ageDays                                           int64
	knownDevice, knownNetwork, knownASN, knownCountry bool
	deviceCount, loginCount                           int64
	usualHour                                         bool
	failedLogins                                      int64
	heldSymbol                                        bool
	bandTrades, lowpriceDays                          int64
	orderCount, usualOrder                            int64
	foreignTrades, marginOrders                       int64
	foreignEnabled, marginEnabled                     bool
	contactAge, factorAge, bankAge                    int64
	holdingsJPY, cashJPY, valueJPY                    int64
	passkeyEnrolled, bankKnown                        bool
	maturityDays                                      int64
	devEstablished, netEstablished, ownContext        bool
	ncSold, maxDaySold                                int64
	ncShare                                           float64
	ncBought                                          int64
	ncBoughtShare                                     float64
	ncIssue                                           bool

	// session
	sessKnown                                            bool
	sessAge, firstAction, actions                        int64
	sessPR, sessMFA, sessNewDevice, sessNewNetwork, jump bool
	ipChanged, asnChanged, countryChanged, uaChanged     bool
	deviceChanged, netMoved, sessNetKnown                bool
	sessNewContext                                       bool
	sold, bought, sells, buys                            int64
	soldShare, symBuyShare                               float64

	// network and device
	country                                      string
	asn                                          int64
	foreignNet, hosting, residential             bool
	blockedIP, blockedASN, allowedIP, allowedASN bool
	watchedIP, watchedASN                        bool
	devBlocked, devAllowed, devWatched           bool

	// instrument
	instKnown, instForeign, halted        bool
	symbol, market                        string
	price, advJPY                         float64
	adv, heat                             int64
	instWatched, instBlocked, instAllowed bool
}

// Variable describes one CEL variable a policy rule may use.
type Variable struct {
	Name string // e.g. "order.value_jpy"
	Type string // bool, int, double or string
	Doc  string
	get  func(*features) ref.Val
	raw  func(*features) any
}

func vb(name, doc string, get func(*features) bool) Variable {
	return Variable{name, "bool", doc, func(f *features) ref.Val { return types.Bool(get(f)) }, func(f *features) any { return get(f) }}
}
func vi(name, doc string, get func(*features) int64) Variable {
	return Variable{name, "int", doc, func(f *features) ref.Val { return types.Int(get(f)) }, func(f *features) any { return get(f) }}
}
func vd(name, doc string, get func(*features) float64) Variable {
	return Variable{name, "double", doc, func(f *features) ref.Val { return types.Double(get(f)) }, func(f *features) any { return get(f) }}
}
func vs(name, doc string, get func(*features) string) Variable {
	return Variable{name, "string", doc, func(f *features) ref.Val { return types.String(get(f)) }, func(f *features) any { return get(f) }}
}

// variables is the table of every CEL variable, in documentation order.
var variables = []Variable{
	vs("action.type", "record type: login, order, withdrawal, bank_change, contact_change, factor_add, factor_remove, password_change", func(f *features) string { return f.typ }),
	vs("action.channel", "web, app or api", func(f *features) string { return f.channel }),
	vi("action.hour", "hour of day of the record's time in JST (0-23)", func(f *features) int64 { return f.hour }),

	vb("login.ok", "the credentials verified", func(f *features) bool { return f.loginOK }),
	vs("login.method", "primary credential: password or passkey", func(f *features) string { return f.loginMethod }),
	vb("login.passkey", "the login proved a passkey (phishing-resistant)", func(f *features) bool { return f.loginPasskey }),
	vi("login.factor_count", "number of factors verified in the login", func(f *features) int64 { return f.loginFactors }),

	vs("order.side", "buy or sell", func(f *features) string { return f.side }),
	vb("order.buy", "a buy order", func(f *features) bool { return f.buy }),
	vb("order.sell", "a sell order", func(f *features) bool { return f.sell }),
	vi("order.value_jpy", "estimated value of the order in yen", func(f *features) int64 { return f.value }),
	vi("order.qty", "shares", func(f *features) int64 { return f.qty }),
	vb("order.margin", "on margin", func(f *features) bool { return f.margin }),
	vb("order.nisa", "in the NISA account", func(f *features) bool { return f.nisa }),
	vb("order.market", "a market order", func(f *features) bool { return f.marketOrder }),
	vd("order.adv_share", "qty as a share of the instrument's average daily volume (1 when ADV is unknown)", func(f *features) float64 { return f.advShare }),
	vd("order.value_ratio", "value over the account's usual order value (0 with no history)", func(f *features) float64 { return f.valueRatio }),
	vb("order.retry", "the order repeats the session's last challenged order (issue, side, quantity, price, account kind) within 5 minutes: its retry after the step-up, not counted again in the session totals", func(f *features) bool { return f.retry }),
	vb("order.new_context_issue", "a buy in a session at risk (as for account.new_context_sold_jpy) of an issue the account had not held or traded before its buys from such sessions of the last 7 days: a later part of the same buy still counts", func(f *features) bool { return f.ncIssue }),
	vd("order.limit_premium", "limit price over the last price, minus 1 (0 for market orders)", func(f *features) float64 { return f.limitPremium }),

	vi("withdrawal.amount_jpy", "amount in yen", func(f *features) int64 { return f.amount }),
	vb("withdrawal.known_bank", "the destination is the registered bank account", func(f *features) bool { return f.knownBank }),
	vd("withdrawal.cash_share", "amount over the cash balance (1 when cash is unknown)", func(f *features) float64 { return f.cashShare }),

	vs("change.field", "contact_change: email, phone or address", func(f *features) string { return f.field }),
	vs("change.factor", "factor_add, factor_remove: the factor", func(f *features) string { return f.factor }),

	vb("account.known", "a snapshot or earlier action of the account was seen", func(f *features) bool { return f.acctKnown }),
	vb("account.frozen", "the account is frozen", func(f *features) bool { return f.frozen }),
	vi("account.age_days", "days since the account was opened (or first seen)", func(f *features) int64 { return f.ageDays }),
	vb("account.known_device", "the device was used in an allowed action before", func(f *features) bool { return f.knownDevice }),
	vb("account.known_network", "the IP's /24 (v4) or /48 (v6) was used in an allowed action before", func(f *features) bool { return f.knownNetwork }),
	vb("account.known_asn", "the ASN was used in an allowed action before", func(f *features) bool { return f.knownASN }),
	vb("account.known_country", "the country was used in an allowed action before (JP always counts as known)", func(f *features) bool { return f.knownCountry }),
	vi("account.device_count", "known devices (capped at 6)", func(f *features) int64 { return f.deviceCount }),
	vi("account.login_count", "allowed logins seen", func(f *features) int64 { return f.loginCount }),
	vb("account.usual_hour", "the account signed in at this hour of day (±1 h) at least twice before", func(f *features) bool { return f.usualHour }),
	vi("account.failed_logins", "consecutive failed logins before this one (reset by an allowed login, forgotten 24 h after the last failure)", func(f *features) int64 { return f.failedLogins }),
	vb("account.held_symbol", "the order's issue was held or traded before (before the current burst)", func(f *features) bool { return f.heldSymbol }),
	vi("account.band_trades", "fills in the order's price band", func(f *features) int64 { return f.bandTrades }),
	vi("account.lowprice_days", "distinct days with a buy fill priced under ¥500", func(f *features) int64 { return f.lowpriceDays }),
	vi("account.order_count", "allowed orders seen", func(f *features) int64 { return f.orderCount }),
	vi("account.usual_order_jpy", "typical order value (geometric moving average; 0 with no history)", func(f *features) int64 { return f.usualOrder }),
	vi("account.foreign_trades", "fills of foreign instruments", func(f *features) int64 { return f.foreignTrades }),
	vi("account.margin_orders", "allowed margin orders", func(f *features) int64 { return f.marginOrders }),
	vb("account.foreign_enabled", "may trade foreign stocks (snapshot)", func(f *features) bool { return f.foreignEnabled }),
	vb("account.margin_enabled", "may trade on margin (snapshot)", func(f *features) bool { return f.marginEnabled }),
	vi("account.contact_change_age_s", "seconds since email, phone or address changed (2^40 if never)", func(f *features) int64 { return f.contactAge }),
	vi("account.factor_change_age_s", "seconds since an authenticator or the password changed (2^40 if never)", func(f *features) int64 { return f.factorAge }),
	vi("account.bank_change_age_s", "seconds since the withdrawal bank account changed (2^40 if never)", func(f *features) int64 { return f.bankAge }),
	vi("account.holdings_jpy", "market value of holdings", func(f *features) int64 { return f.holdingsJPY }),
	vi("account.cash_jpy", "cash balance", func(f *features) int64 { return f.cashJPY }),
	vi("account.value_jpy", "holdings plus cash", func(f *features) int64 { return f.valueJPY }),
	vb("account.passkey_enrolled", "a passkey is enrolled", func(f *features) bool { return f.passkeyEnrolled }),
	vb("account.bank_known", "a withdrawal bank account is registered", func(f *features) bool { return f.bankKnown }),
	vi("account.maturity_days", "days of history seen: whole days since the engine's first record, or since the account was opened (or first seen, without a snapshot) if later. With no history, new is not evidence: rules reading a new device, network or hour weigh it by this", func(f *features) int64 { return f.maturityDays }),
	vb("account.established_device", "the device is the customer's established own, not just known (a phished sign-in makes its device known at once): first used in an allowed action 7 days ago or more, or on an earlier day when the account had no established device or under 7 days of history", func(f *features) bool { return f.devEstablished }),
	vb("account.established_context", "the account has an established device or network at all: it has a history of acting of its own, against which a new context means something (a dormant account, never seen acting, has none)", func(f *features) bool { return f.ownContext }),
	vb("account.established_network", "the network (/24, /48) is the customer's established own (as account.established_device)", func(f *features) bool { return f.netEstablished }),
	vi("account.new_context_sold_jpy", "value at risk from new contexts: sell orders (allowed or stepped up, retries once) of sessions in a new context (session.new_context) that means something (the customer has an established device or network, or a week of history) over the last 7 days, across sessions, this order included", func(f *features) int64 { return f.ncSold }),
	vd("account.new_context_sold_share", "account.new_context_sold_jpy over the holdings value when the first of those sells was made, or the holdings now plus those sells if more (1 when holdings are unknown)", func(f *features) float64 { return f.ncShare }),
	vi("account.new_context_bought_jpy", "where value at risk goes with cash: buy orders (allowed or stepped up, retries once) of sessions at risk (as for account.new_context_sold_jpy) of issues the account had not held or traded before them, over the last 7 days, across sessions, this order included", func(f *features) int64 { return f.ncBought }),
	vd("account.new_context_bought_share", "account.new_context_bought_jpy over the cash when the first of those buys was made, or the cash now if more (0 when cash is unknown)", func(f *features) float64 { return f.ncBoughtShare }),
	vi("account.max_day_sold_jpy", "the most the account sold (allowed sell orders) in one day from sessions not in a new context", func(f *features) int64 { return f.maxDaySold }),

	vb("session.known", "the session's login was seen", func(f *features) bool { return f.sessKnown }),
	vi("session.age_s", "seconds since sign-in", func(f *features) int64 { return f.sessAge }),
	vi("session.first_action_s", "seconds from sign-in to the session's first action after it (this one if first)", func(f *features) int64 { return f.firstAction }),
	vi("session.actions", "actions in the session before this one", func(f *features) int64 { return f.actions }),
	vb("session.phishing_resistant", "the session's login proved a passkey (for a login: this login)", func(f *features) bool { return f.sessPR }),
	vb("session.mfa", "the session's login proved two or more factors", func(f *features) bool { return f.sessMFA }),
	vb("session.new_device", "the session's device was unknown to the account at sign-in", func(f *features) bool { return f.sessNewDevice }),
	vb("session.new_network", "the session's network and ASN were unknown to the account at sign-in", func(f *features) bool { return f.sessNewNetwork }),
	vb("session.known_network", "the session's sign-in network (/24, /48) was known to the account", func(f *features) bool { return f.sessNetKnown }),
	vb("session.network_moved", "the session is used from a network (/24, /48) other than its sign-in's that was unknown to the account when the session moved there (a stolen cookie replayed through a proxy, even on the victim's own carrier)", func(f *features) bool { return f.netMoved }),
	vb("session.new_context", "the session began on a device and a network (/24, /48) neither established for the account, and its sign-in proved no passkey: a phished or relayed sign-in, even on the victim's own carrier, looks like this (and, with no history, every session does)", func(f *features) bool { return f.sessNewContext }),
	vb("session.context_jump", "the session moved to another device, user agent, country or an ASN new to the account (stolen session cookie)", func(f *features) bool { return f.jump }),
	vb("session.ip_changed", "network differs from the session's sign-in", func(f *features) bool { return f.ipChanged }),
	vb("session.asn_changed", "ASN differs from the session's sign-in", func(f *features) bool { return f.asnChanged }),
	vb("session.country_changed", "country differs from the session's sign-in", func(f *features) bool { return f.countryChanged }),
	vb("session.ua_changed", "user agent differs from the session's sign-in", func(f *features) bool { return f.uaChanged }),
	vb("session.device_changed", "device differs from the session's sign-in", func(f *features) bool { return f.deviceChanged }),
	vi("session.sold_jpy", "sell orders in the current burst (same session or 60 min), this one included", func(f *features) int64 { return f.sold }),
	vi("session.bought_jpy", "buy orders in the current burst, this one included", func(f *features) int64 { return f.bought }),
	vi("session.sells", "sell orders in the current burst, this one included", func(f *features) int64 { return f.sells }),
	vi("session.buys", "buy orders in the current burst, this one included", func(f *features) int64 { return f.buys }),
	vd("session.sold_share", "session.sold_jpy over the holdings value when the burst began", func(f *features) float64 { return f.soldShare }),
	vd("session.symbol_buy_share", "buys of the order's issue in the burst (this one included) over session.sold_jpy", func(f *features) float64 { return f.symBuyShare }),

	vs("net.country", "country of the IP", func(f *features) string { return f.country }),
	vi("net.asn", "ASN of the IP", func(f *features) int64 { return f.asn }),
	vb("net.foreign", "country known and not JP", func(f *features) bool { return f.foreignNet }),
	vb("net.hosting", "ASN on the hosting list (cloud, VPS, VPN)", func(f *features) bool { return f.hosting }),
	vb("net.residential", "ASN on the residential list (Japanese carriers)", func(f *features) bool { return f.residential }),
	vb("net.blocked_ip", "IP on the block list", func(f *features) bool { return f.blockedIP }),
	vb("net.blocked_asn", "ASN on the block list", func(f *features) bool { return f.blockedASN }),
	vb("net.allowed_ip", "IP on the allow list", func(f *features) bool { return f.allowedIP }),
	vb("net.allowed_asn", "ASN on the allow list", func(f *features) bool { return f.allowedASN }),
	vb("net.watched_ip", "IP on the watch list", func(f *features) bool { return f.watchedIP }),
	vb("net.watched_asn", "ASN on the watch list", func(f *features) bool { return f.watchedASN }),

	vb("device.blocked", "device on the block list", func(f *features) bool { return f.devBlocked }),
	vb("device.allowed", "device on the allow list", func(f *features) bool { return f.devAllowed }),
	vb("device.watched", "device on the watch list", func(f *features) bool { return f.devWatched }),

	vb("instrument.known", "an instrument record was seen", func(f *features) bool { return f.instKnown }),
	vs("instrument.symbol", "symbol", func(f *features) string { return f.symbol }),
	vs("instrument.market", "market, e.g. TSE_STANDARD, HK", func(f *features) string { return f.market }),
	vb("instrument.foreign", "listed outside Japan", func(f *features) bool { return f.instForeign }),
	vd("instrument.price_jpy", "last price in yen", func(f *features) float64 { return f.price }),
	vi("instrument.adv_shares", "20-day average daily volume", func(f *features) int64 { return f.adv }),
	vd("instrument.adv_jpy", "adv_shares times price_jpy", func(f *features) float64 { return f.advJPY }),
	vb("instrument.halted", "buys halted", func(f *features) bool { return f.halted }),
	vi("instrument.heat", "surveillance heat 0-100", func(f *features) int64 { return f.heat }),
	vb("instrument.watched", "on the watch list", func(f *features) bool { return f.instWatched }),
	vb("instrument.blocked", "on the block list", func(f *features) bool { return f.instBlocked }),
	vb("instrument.allowed", "on the allow list", func(f *features) bool { return f.instAllowed }),
}

var varIndex = func() map[string]int {
	m := make(map[string]int, len(variables))
	for i, v := range variables {
		m[v.Name] = i
	}
	return m
}()

// Variables returns the CEL variables policies may use, in documentation order.
func Variables() []Variable { return append([]Variable(nil), variables...) }

func celType(t string) *cel.Type {
	switch t {
	case "bool":
		return cel.BoolType
	case "int":
		return cel.IntType
	case "double":
		return cel.DoubleType
	}
	return cel.StringType
}

// varValue returns the Go value of variable i (bool, int64, float64 or string).
func (f *features) varValue(i int) any {
	return variables[i].raw(f)
}
