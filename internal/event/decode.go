package event

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"time"
)

// MaxLine is the longest record line the decoder accepts.
const MaxLine = 1 << 20

// Error is a decoding or validation error that names the line (1-based; 0
// for a record that did not come from a stream) and the field.
type Error struct {
	Line  int
	Field string
	Msg   string
	// Unknown is set when the record is well formed but its type is not of
	// this version of the spec: such records are counted and skipped.
	Unknown bool
}

func (e *Error) Error() string {
	var b []byte
	if e.Line > 0 {
		b = fmt.Appendf(b, "line %d: ", e.Line)
	}
	if e.Field != "" {
		b = fmt.Appendf(b, "field %s: ", e.Field)
	}
	return string(append(b, e.Msg...))
}

// IsUnknownType reports whether err is a well-formed record of a type this
// version does not know.
func IsUnknownType(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Unknown
}

// Decode decodes and validates one record from a JSON object.
func Decode(data []byte) (*Record, error) {
	r := new(Record)
	if err := decodeInto(data, r); err != nil {
		return nil, err
	}
	return r, nil
}

// decodeInto decodes data into r, which must be the zero Record, and
// validates it. Most records take decodeFast, which gives exactly what
// json.Unmarshal would; whatever it does not handle, errors included, goes
// to json.Unmarshal from scratch.
func decodeInto(data []byte, r *Record) error {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return &Error{Msg: "want a JSON object"}
	}
	if !decodeFast(data, r) {
		*r = Record{}
		if err := json.Unmarshal(data, r); err != nil {
			return jsonError(err)
		}
	}
	return r.Validate()
}

func jsonError(err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	var pe *time.ParseError
	switch {
	case errors.As(err, &te):
		return &Error{Field: te.Field, Msg: fmt.Sprintf("want %s, got JSON %s", kindName(te.Type.Kind().String()), te.Value)}
	case errors.As(err, &se):
		return &Error{Msg: fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, se)}
	case errors.As(err, &pe):
		return &Error{Field: "time", Msg: "want an RFC 3339 time with an offset, e.g. 2025-03-26T09:12:03.120+09:00"}
	}
	return &Error{Msg: "malformed JSON: " + err.Error()}
}

func kindName(k string) string {
	switch k {
	case "int", "int64", "int32":
		return "an integer"
	case "float64":
		return "a number"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice":
		return "an array"
	case "struct":
		return "an object"
	}
	return k
}

// Reader reads a JSON Lines stream of records, strictly: every error names
// its line and field. Records of unknown types are counted in Unknown and
// skipped, never fatal.
type Reader struct {
	s       *bufio.Scanner
	line    int
	last    time.Time
	Unknown map[Type]int
	// Unordered turns off the check that times never go backwards.
	Unordered bool
}

// NewReader returns a Reader of r.
func NewReader(r io.Reader) *Reader {
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 0, 64<<10), MaxLine)
	return &Reader{s: s, Unknown: map[Type]int{}}
}

// Line returns the number of the line read last.
func (d *Reader) Line() int { return d.line }

// Next returns the next known record, or io.EOF at the end of the stream.
func (d *Reader) Next() (*Record, error) {
	for {
		r := new(Record)
		err := d.NextInto(r)
		if err == nil {
			return r, nil
		}
		if IsUnknownType(err) {
			continue
		}
		return nil, err
	}
}

// NextInto decodes the next line into r, which it resets first. It returns
// an *Error with Unknown set for a record of an unknown type (already
// counted), and io.EOF at the end of the stream.
func (d *Reader) NextInto(r *Record) error {
	if !d.s.Scan() {
		if err := d.s.Err(); err != nil {
			if errors.Is(err, bufio.ErrTooLong) {
				return &Error{Line: d.line + 1, Msg: fmt.Sprintf("line longer than %d bytes", MaxLine)}
			}
			return err
		}
		return io.EOF
	}
	d.line++
	line := d.s.Bytes()
	if len(bytes.TrimSpace(line)) == 0 {
		return &Error{Line: d.line, Msg: "blank line inside the stream"}
	}
	*r = Record{}
	if err := decodeInto(line, r); err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.Line = d.line
			if e.Unknown {
				d.Unknown[r.Type]++
			}
		}
		return err
	}
	if !d.Unordered {
		if r.Time.Before(d.last) {
			return &Error{Line: d.line, Field: "time", Msg: fmt.Sprintf("earlier than the record before it (%s): a stream is ordered by time", d.last.Format(time.RFC3339Nano))}
		}
		d.last = r.Time
	}
	return nil
}

// Validate checks that r has every field its type requires, with values in range.
func (r *Record) Validate() error {
	if r.Type == "" {
		return &Error{Field: "type", Msg: "missing"}
	}
	if r.ID == "" {
		return &Error{Field: "id", Msg: "missing"}
	}
	if r.Time.IsZero() {
		return &Error{Field: "time", Msg: "missing"}
	}
	if !r.Type.Known() {
		return &Error{Field: "type", Msg: fmt.Sprintf("unknown type %q (skipped)", r.Type), Unknown: true}
	}
	v := validator{r: r}
	if r.Type.Action() {
		v.need("account", r.Account)
		v.oneOf("channel", r.Channel, true, ChannelWeb, ChannelApp, ChannelAPI)
		if r.ASN < 0 {
			v.fail("asn", "must not be negative")
		}
	}
	switch r.Type {
	case TypeInstrument:
		v.need("symbol", r.Symbol)
		v.oneOf("market", r.Market, false, "TSE_PRIME", "TSE_STANDARD", "TSE_GROWTH", "HK", "SH", "SZ", "US")
		if len(r.Currency) != 3 {
			v.fail("currency", "want an ISO 4217 code such as JPY")
		}
		v.positive("price", r.Price)
		v.positive("price_jpy", r.PriceJPY)
		v.nonNegative("adv_shares", r.ADVShares)
		if r.Lot <= 0 {
			v.fail("lot", "must be a positive integer")
		}
	case TypeAccount:
		v.need("account", r.Account)
		if r.Opened != "" {
			if _, err := time.Parse(time.DateOnly, r.Opened); err != nil {
				v.fail("opened", "want a date such as 2019-04-01")
			}
		}
		for i, h := range r.Holdings {
			f := fmt.Sprintf("holdings[%d].", i)
			if h.Symbol == "" {
				v.fail(f+"symbol", "missing")
			}
			if h.Qty <= 0 {
				v.fail(f+"qty", "must be a positive integer")
			}
			if h.CostJPY < 0 {
				v.fail(f+"cost_jpy", "must not be negative")
			}
			v.oneOf(f+"kind", h.Kind, false, KindCash, KindMargin, KindNISA)
		}
		v.factors(r.Factors)
	case TypeBar:
		v.need("symbol", r.Symbol)
		v.positive("open", r.Open)
		v.positive("high", r.High)
		v.positive("low", r.Low)
		v.positive("close", r.Close)
		v.nonNegative("volume", r.Volume)
		if v.err == nil && (r.High < r.Low || r.Open > r.High || r.Open < r.Low || r.Close > r.High || r.Close < r.Low) {
			v.fail("high", "open and close must lie between low and high")
		}
	case TypeFill:
		v.need("account", r.Account)
		v.need("order_id", r.OrderID)
		v.need("symbol", r.Symbol)
		v.oneOf("side", r.Side, false, SideBuy, SideSell)
		v.positiveInt("qty", r.Qty)
		v.positive("price", r.Price)
		v.nonNegative("value_jpy", r.ValueJPY)
	case TypeLogin:
		v.oneOf("method", r.Method, false, FactorPassword, FactorPasskey)
		v.factors(r.Factors)
	case TypeOrder:
		v.need("order_id", r.OrderID)
		v.need("symbol", r.Symbol)
		v.oneOf("side", r.Side, false, SideBuy, SideSell)
		v.positiveInt("qty", r.Qty)
		v.oneOf("price_type", r.PriceType, false, PriceMarket, PriceLimit)
		if r.PriceType == PriceLimit {
			v.positive("limit_price", r.LimitPrice)
		} else if r.LimitPrice != 0 {
			v.fail("limit_price", "only for limit orders")
		}
		v.oneOf("account_kind", r.AccountKind, false, KindCash, KindMargin, KindNISA)
		v.nonNegative("value_jpy", r.ValueJPY)
	case TypeWithdrawal:
		v.positiveInt("amount_jpy", r.AmountJPY)
		v.need("bank_hash", r.BankHash)
	case TypeBankChange:
		v.need("bank_hash", r.BankHash)
	case TypeContactChange:
		v.oneOf("field", r.Field, false, "email", "phone", "address")
		v.need("new_hash", r.NewHash)
	case TypeFactorAdd, TypeFactorRemove:
		v.oneOf("factor", r.Factor, false, FactorPassword, FactorPasskey, FactorTOTP, FactorEmailOTP, FactorSMSOTP)
	}
	if v.err != nil {
		return v.err
	}
	return nil
}

type validator struct {
	r   *Record
	err *Error
}

func (v *validator) fail(field, msg string) {
	if v.err == nil {
		v.err = &Error{Field: field, Msg: msg}
	}
}

func (v *validator) need(field, s string) {
	if s == "" {
		v.fail(field, fmt.Sprintf("missing (a %s record needs it)", v.r.Type))
	}
}

func (v *validator) oneOf(field, s string, optional bool, allowed ...string) {
	if s == "" && optional {
		return
	}
	for _, a := range allowed {
		if s == a {
			return
		}
	}
	// fmt gets a copy of allowed so that allowed does not escape: the
	// callers' variadic slices stay on the stack and valid records
	// validate without allocating.
	if s == "" {
		v.fail(field, fmt.Sprintf("missing (a %s record needs one of %q)", v.r.Type, slices.Clone(allowed)))
		return
	}
	v.fail(field, fmt.Sprintf("%q is not one of %q", s, slices.Clone(allowed)))
}

func (v *validator) positive(field string, f float64) {
	if math.IsNaN(f) || math.IsInf(f, 0) || f <= 0 {
		v.fail(field, "must be a positive number")
	}
}

func (v *validator) positiveInt(field string, n int64) {
	if n <= 0 {
		v.fail(field, "must be a positive integer")
	}
}

func (v *validator) nonNegative(field string, n int64) {
	if n < 0 {
		v.fail(field, "must not be negative")
	}
}

// factorNames are the factors a record may name.
var factorNames = []string{FactorPassword, FactorPasskey, FactorTOTP, FactorEmailOTP, FactorSMSOTP}

func (v *validator) factors(fs []string) {
	for i, f := range fs {
		// The field name is built only for a factor that fails.
		if !slices.Contains(factorNames, f) {
			v.oneOf(fmt.Sprintf("factors[%d]", i), f, false, factorNames...)
		}
	}
}
