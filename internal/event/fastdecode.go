package event

import (
	"strconv"
	"unicode/utf8"
)

// The fast path of decodeInto.
//
// decodeFast is a hand-written decoder for the records Kabuto actually
// receives. It produces exactly the Record that json.Unmarshal would, or
// gives up: it never reports an error of its own, so every error still
// comes from encoding/json and reads as it always has. It gives up, among
// other things, on:
//
//   - any syntax error, and trailing bytes after the object;
//   - a key holding an escape or a non-ASCII byte (encoding/json matches
//     keys to fields with Unicode case folding, so "aſn" would be "asn");
//   - a string field or array element holding an escape or invalid UTF-8
//     (encoding/json replaces invalid UTF-8 with U+FFFD);
//   - null anywhere but inside the value of an unknown key;
//   - a value of the wrong JSON type for its field, an integer field given a
//     fraction, an exponent or more than 18 digits, a number that does not
//     fit a float64;
//   - a time that time.Time.UnmarshalJSON rejects;
//   - a second "holdings" key (encoding/json decodes into the elements the
//     first one left, merging them);
//   - unknown values nested more than maxSkipDepth deep.

// maxSkipDepth bounds the nesting of the values of unknown keys that the
// fast path skips over; deeper ones go to encoding/json.
const maxSkipDepth = 32

// fastDecoder reads one JSON value from b, starting at i.
type fastDecoder struct {
	b []byte
	i int
	// key holds the current object key, folded to lower case.
	key [16]byte
}

// decodeFast decodes data, one JSON object, into r, which must be the zero
// Record, and reports whether it could do so exactly as json.Unmarshal
// would. When it reports false, r holds an unspecified partial result.
func decodeFast(data []byte, r *Record) bool {
	d := fastDecoder{b: data}
	if !d.record(r) {
		return false
	}
	d.space()
	return d.i == len(d.b)
}

// space skips JSON white space.
func (d *fastDecoder) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// consume skips white space and then c, if c comes next, reporting whether
// it did.
func (d *fastDecoder) consume(c byte) bool {
	d.space()
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

// record decodes the object that comes next into r.
func (d *fastDecoder) record(r *Record) bool {
	if !d.consume('{') {
		return false
	}
	if d.consume('}') {
		return true
	}
	for {
		key, ok := d.memberKey()
		if !ok || !d.recordField(r, key) {
			return false
		}
		if !d.consume(',') {
			return d.consume('}')
		}
	}
}

// memberKey reads an object key, the colon after it and the white space
// before the value. It returns the key folded to ASCII lower case, or nil
// for a key too long to name any field. A key with an escape or a non-ASCII
// byte is not handled.
func (d *fastDecoder) memberKey() ([]byte, bool) {
	d.space()
	b := d.b
	if d.i >= len(b) || b[d.i] != '"' {
		return nil, false
	}
	start := d.i + 1
	j := start
	var class uint8 // plainByte, or upperByte if the key has an upper case letter
	for j < len(b) && strClass[b[j]] <= upperByte {
		class |= strClass[b[j]]
		j++
	}
	if j == len(b) || b[j] != '"' {
		return nil, false
	}
	key := b[start:j]
	d.i = j + 1
	if !d.consume(':') {
		return nil, false
	}
	d.space()
	switch {
	case len(key) > len(d.key):
		return nil, true
	case class == upperByte:
		for k, c := range key {
			if strClass[c] == upperByte {
				c += 'a' - 'A'
			}
			d.key[k] = c
		}
		return d.key[:len(key)], true
	}
	return key, true
}

// recordField decodes the value of the member of a Record whose folded key
// is key.
func (d *fastDecoder) recordField(r *Record, key []byte) bool {
	switch string(key) {
	case "id":
		return d.str(&r.ID)
	case "type":
		s, ok := d.plainString()
		r.Type = Type(internWord(s))
		return ok
	case "time":
		start := d.i
		if _, ok := d.plainString(); !ok {
			return false
		}
		// This is exactly what encoding/json does with a time.Time.
		return r.Time.UnmarshalJSON(d.b[start:d.i]) == nil
	case "account":
		return d.str(&r.Account)
	case "session":
		return d.str(&r.Session)
	case "ip":
		return d.str(&r.IP)
	case "asn":
		return d.int(&r.ASN)
	case "country":
		return d.str(&r.Country)
	case "device":
		return d.str(&r.Device)
	case "ua":
		return d.str(&r.UA)
	case "channel":
		return d.word(&r.Channel)
	case "symbol":
		return d.str(&r.Symbol)
	case "name":
		return d.str(&r.Name)
	case "market":
		return d.word(&r.Market)
	case "currency":
		return d.word(&r.Currency)
	case "price":
		return d.float(&r.Price)
	case "price_jpy":
		return d.float(&r.PriceJPY)
	case "adv_shares":
		return d.int(&r.ADVShares)
	case "lot":
		return d.int(&r.Lot)
	case "opened":
		return d.str(&r.Opened)
	case "cash_jpy":
		return d.int(&r.CashJPY)
	case "holdings":
		if r.Holdings != nil {
			return false // see the note on duplicate holdings above
		}
		return d.holdings(&r.Holdings)
	case "factors":
		return d.words(&r.Factors)
	case "email_hash":
		return d.str(&r.EmailHash)
	case "phone_hash":
		return d.str(&r.PhoneHash)
	case "bank_hash":
		return d.str(&r.BankHash)
	case "foreign_enabled":
		return d.bool(&r.ForeignEnabled)
	case "margin_enabled":
		return d.bool(&r.MarginEnabled)
	case "open":
		return d.float(&r.Open)
	case "high":
		return d.float(&r.High)
	case "low":
		return d.float(&r.Low)
	case "close":
		return d.float(&r.Close)
	case "volume":
		return d.int(&r.Volume)
	case "order_id":
		return d.str(&r.OrderID)
	case "side":
		return d.word(&r.Side)
	case "qty":
		return d.int(&r.Qty)
	case "value_jpy":
		return d.int(&r.ValueJPY)
	case "price_type":
		return d.word(&r.PriceType)
	case "limit_price":
		return d.float(&r.LimitPrice)
	case "account_kind":
		return d.word(&r.AccountKind)
	case "method":
		return d.word(&r.Method)
	case "ok":
		return d.bool(&r.OK)
	case "amount_jpy":
		return d.int(&r.AmountJPY)
	case "field":
		return d.word(&r.Field)
	case "new_hash":
		return d.str(&r.NewHash)
	case "factor":
		return d.word(&r.Factor)
	}
	return d.skip(0)
}

// holdings decodes an array of holdings into a new slice at dst.
func (d *fastDecoder) holdings(dst *[]Holding) bool {
	hs := []Holding{} // [] decodes to an empty slice, not nil
	ok := d.array(func() bool {
		var h Holding
		if !d.holding(&h) {
			return false
		}
		hs = append(hs, h)
		return true
	})
	*dst = hs
	return ok
}

// array decodes the array that comes next, calling elem for each of its
// elements, and reports whether it is well formed and elem succeeded.
func (d *fastDecoder) array(elem func() bool) bool {
	if !d.consume('[') {
		return false
	}
	if d.consume(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if !d.consume(',') {
			return d.consume(']')
		}
	}
}

// holding decodes the object that comes next into h.
func (d *fastDecoder) holding(h *Holding) bool {
	if !d.consume('{') {
		return false
	}
	if d.consume('}') {
		return true
	}
	for {
		key, ok := d.memberKey()
		if !ok {
			return false
		}
		switch string(key) {
		case "symbol":
			ok = d.str(&h.Symbol)
		case "qty":
			ok = d.int(&h.Qty)
		case "cost_jpy":
			ok = d.int(&h.CostJPY)
		case "kind":
			ok = d.word(&h.Kind)
		default:
			ok = d.skip(0)
		}
		if !ok {
			return false
		}
		if !d.consume(',') {
			return d.consume('}')
		}
	}
}

// plainString reads a string without escapes, holding ASCII or valid UTF-8,
// and returns its contents: what encoding/json would decode it to.
func (d *fastDecoder) plainString() ([]byte, bool) {
	b := d.b
	if d.i >= len(b) || b[d.i] != '"' {
		return nil, false
	}
	start := d.i + 1
	j := start
	ascii := true
	for {
		for j < len(b) && strClass[b[j]] <= upperByte {
			j++
		}
		if j == len(b) {
			return nil, false
		}
		switch strClass[b[j]] {
		case quoteByte:
			s := b[start:j]
			if !ascii && !utf8.Valid(s) {
				return nil, false
			}
			d.i = j + 1
			return s, true
		case otherByte:
			return nil, false
		}
		ascii = false
		j++
	}
}

// Classes of bytes in strings.
const (
	plainByte = iota // printable ASCII other than these
	upperByte        // A to Z
	quoteByte        // "
	utf8Byte         // part of a multi-byte UTF-8 sequence, or invalid
	otherByte        // a backslash or a control character
)

// strClass gives the class of each byte in a string.
var strClass = func() (t [256]uint8) {
	for c := range t {
		switch {
		case c == '"':
			t[c] = quoteByte
		case c == '\\' || c < 0x20:
			t[c] = otherByte
		case c >= utf8.RuneSelf:
			t[c] = utf8Byte
		case 'A' <= c && c <= 'Z':
			t[c] = upperByte
		}
	}
	return t
}()

// str decodes a string into dst.
func (d *fastDecoder) str(dst *string) bool {
	s, ok := d.plainString()
	*dst = string(s)
	return ok
}

// word decodes a string of a field with a closed set of values into dst,
// without allocating for the values the spec names.
func (d *fastDecoder) word(dst *string) bool {
	s, ok := d.plainString()
	*dst = internWord(s)
	return ok
}

// words decodes an array of strings, such as factors, into a new slice at
// dst.
func (d *fastDecoder) words(dst *[]string) bool {
	// Collect on the stack first so that the slice is allocated once.
	var buf [8]string
	ws := buf[:0]
	ok := d.array(func() bool {
		d.space()
		s, ok := d.plainString()
		ws = append(ws, internWord(s))
		return ok
	})
	// [] decodes to an empty slice, not nil.
	*dst = append(make([]string, 0, len(ws)), ws...)
	return ok
}

// int decodes an integer into dst. Numbers that are not plain integers,
// which encoding/json rejects for an int64, and integers of more than 18
// digits, which may not fit, are not handled.
func (d *fastDecoder) int(dst *int64) bool {
	tok, ok := d.number()
	if !ok {
		return false
	}
	digits := tok
	if tok[0] == '-' {
		digits = tok[1:]
	}
	if len(digits) > 18 {
		return false
	}
	var n int64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return false // a fraction or an exponent
		}
		n = n*10 + int64(c-'0')
	}
	if tok[0] == '-' {
		n = -n
	}
	*dst = n
	return true
}

// float decodes a number into dst, as encoding/json does.
func (d *fastDecoder) float(dst *float64) bool {
	tok, ok := d.number()
	if !ok {
		return false
	}
	f, err := strconv.ParseFloat(string(tok), 64)
	if err != nil {
		return false
	}
	*dst = f
	return true
}

// bool decodes true or false into dst.
func (d *fastDecoder) bool(dst *bool) bool {
	switch {
	case d.literal("true"):
		*dst = true
	case d.literal("false"):
		*dst = false
	default:
		return false
	}
	return true
}

// literal reads lit if it comes next.
func (d *fastDecoder) literal(lit string) bool {
	if len(d.b)-d.i >= len(lit) && string(d.b[d.i:d.i+len(lit)]) == lit {
		d.i += len(lit)
		return true
	}
	return false
}

// number reads a number in JSON's grammar and returns it.
func (d *fastDecoder) number() ([]byte, bool) {
	b, j := d.b, d.i
	if j < len(b) && b[j] == '-' {
		j++
	}
	switch {
	case j < len(b) && b[j] == '0':
		j++
	case j < len(b) && '1' <= b[j] && b[j] <= '9':
		j = digits(b, j+1)
	default:
		return nil, false
	}
	if j < len(b) && b[j] == '.' {
		k := digits(b, j+1)
		if k == j+1 {
			return nil, false
		}
		j = k
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		k := digits(b, j)
		if k == j {
			return nil, false
		}
		j = k
	}
	tok := b[d.i:j]
	d.i = j
	return tok, true
}

// digits returns the index of the first byte at or after j in b that is not
// a decimal digit.
func digits(b []byte, j int) int {
	for j < len(b) && '0' <= b[j] && b[j] <= '9' {
		j++
	}
	return j
}

// skip checks and skips the value of an unknown key: any JSON value.
func (d *fastDecoder) skip(depth int) bool {
	if d.i >= len(d.b) {
		return false
	}
	switch c := d.b[d.i]; c {
	case '"':
		return d.skipString()
	case 't':
		return d.literal("true")
	case 'f':
		return d.literal("false")
	case 'n':
		return d.literal("null")
	case '{', '[':
		if depth >= maxSkipDepth {
			return false
		}
		d.i++
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		if d.consume(end) {
			return true
		}
		for {
			d.space()
			if c == '{' && (!d.skipString() || !d.consume(':')) {
				return false
			}
			d.space()
			if !d.skip(depth + 1) {
				return false
			}
			if !d.consume(',') {
				return d.consume(end)
			}
		}
	}
	_, ok := d.number()
	return ok
}

// skipString checks and skips a string, escapes and all.
func (d *fastDecoder) skipString() bool {
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return false
	}
	for j := d.i + 1; j < len(d.b); j++ {
		switch c := d.b[j]; {
		case c == '"':
			d.i = j + 1
			return true
		case c < 0x20:
			return false
		case c == '\\':
			j++
			if j == len(d.b) {
				return false
			}
			switch d.b[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(d.b)-j <= 4 {
					return false
				}
				for _, h := range d.b[j+1 : j+5] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return false
					}
				}
				j += 4
			default:
				return false
			}
		}
	}
	return false
}

// internWord returns s as a string. For the values of the fields with a
// closed set of values (types, channels, sides, kinds, factors, contact
// fields, markets and common currencies) it returns a constant instead of
// allocating.
func internWord(s []byte) string {
	switch string(s) {
	case string(TypeInstrument):
		return string(TypeInstrument)
	case string(TypeAccount):
		return string(TypeAccount)
	case string(TypeBar):
		return string(TypeBar)
	case string(TypeFill):
		return string(TypeFill)
	case string(TypeLogin):
		return string(TypeLogin)
	case string(TypeOrder):
		return string(TypeOrder)
	case string(TypeWithdrawal):
		return string(TypeWithdrawal)
	case string(TypeBankChange):
		return string(TypeBankChange)
	case string(TypeContactChange):
		return string(TypeContactChange)
	case string(TypeFactorAdd):
		return string(TypeFactorAdd)
	case string(TypeFactorRemove):
		return string(TypeFactorRemove)
	case string(TypePasswordChange):
		return string(TypePasswordChange)
	case ChannelWeb:
		return ChannelWeb
	case ChannelApp:
		return ChannelApp
	case ChannelAPI:
		return ChannelAPI
	case SideBuy:
		return SideBuy
	case SideSell:
		return SideSell
	case PriceMarket:
		return PriceMarket
	case PriceLimit:
		return PriceLimit
	case KindCash:
		return KindCash
	case KindMargin:
		return KindMargin
	case KindNISA:
		return KindNISA
	case FactorPassword:
		return FactorPassword
	case FactorPasskey:
		return FactorPasskey
	case FactorTOTP:
		return FactorTOTP
	case FactorEmailOTP:
		return FactorEmailOTP
	case FactorSMSOTP:
		return FactorSMSOTP
	case "email":
		return "email"
	case "phone":
		return "phone"
	case "address":
		return "address"
	case "TSE_PRIME":
		return "TSE_PRIME"
	case "TSE_STANDARD":
		return "TSE_STANDARD"
	case "TSE_GROWTH":
		return "TSE_GROWTH"
	case "HK":
		return "HK"
	case "SH":
		return "SH"
	case "SZ":
		return "SZ"
	case "US":
		return "US"
	case "JPY":
		return "JPY"
	case "USD":
		return "USD"
	case "HKD":
		return "HKD"
	case "CNY":
		return "CNY"
	}
	return string(s)
}
