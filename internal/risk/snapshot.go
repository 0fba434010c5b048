package risk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"reflect"
	"unsafe"
)

// A snapshot of accounts is their profiles in a compact binary form, for
// a cluster node that saves its partitions' state and for the node that
// takes a partition over and loads it (internal/cluster). It is written
// field by field in declaration order, whatever the profile holds, and
// starts with a fingerprint of the profile's layout: a node whose profile
// differs (another version) refuses it, and rebuilds from the stream.
//
// Instruments are named by symbol, not by their place in the engine's
// instrument table, which differs between engines that learnt them in
// another order: holdings and burst buys by their symbol, the filter of
// issues ever held or traded by the list of known instruments it holds.

var profileLayout = layoutOf(reflect.TypeFor[profile]())

// layoutOf fingerprints a type's fields, recursively.
func layoutOf(t reflect.Type) uint64 {
	h := fnv.New64a()
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		fmt.Fprintf(h, "%s/%d(", t.Kind(), t.Size())
		switch t.Kind() {
		case reflect.Struct:
			for i := range t.NumField() {
				f := t.Field(i)
				h.Write([]byte(f.Name + ":"))
				walk(f.Type)
			}
		case reflect.Array:
			fmt.Fprintf(h, "%d*", t.Len())
			walk(t.Elem())
		case reflect.Slice, reflect.Pointer:
			walk(t.Elem())
		}
		h.Write([]byte(")"))
	}
	walk(t)
	return h.Sum64()
}

// ExportAccounts returns a snapshot of the profiles of accounts (those the
// engine holds state for).
func (e *Engine) ExportAccounts(accounts []string) ([]byte, error) {
	e.inst.mu.RLock()
	tab := make([]string, len(e.inst.list))
	for i, in := range e.inst.list {
		tab[i] = in.symbol
	}
	e.inst.mu.RUnlock()
	enc := &encoder{tab: tab}
	var n uint64
	for _, a := range accounts {
		k := hash64(a)
		sh := &e.shards[k%numShards]
		sh.mu.Lock()
		p := sh.get(k, false)
		if p != nil {
			enc.b = binary.AppendUvarint(enc.b, k)
			c := *p
			c.issues = [8]uint64{}
			enc.value(reflect.ValueOf(&c).Elem())
			var held []string
			for i, s := range tab {
				if p.hasIssue(uint32(i)) {
					held = append(held, s)
				}
			}
			enc.b = binary.AppendUvarint(enc.b, uint64(len(held)))
			for _, s := range held {
				enc.b = appendString(enc.b, s)
			}
			n++
		}
		sh.mu.Unlock()
		if enc.err != nil {
			return nil, enc.err
		}
	}
	b := binary.AppendUvarint(nil, profileLayout)
	b = binary.AppendUvarint(b, n)
	return append(b, enc.b...), nil
}

// ImportAccounts loads a snapshot made by ExportAccounts, replacing the
// profiles of its accounts. A freeze in force in this engine stays: the
// cluster's bucket, not a snapshot, says who is frozen. It returns how
// many profiles it loaded; on an error it loads none.
func (e *Engine) ImportAccounts(b []byte) (int, error) {
	d := &decoder{b: b}
	if d.uvarint() != profileLayout {
		return 0, errors.New("risk: snapshot of another profile layout")
	}
	n := d.uvarint()
	type loaded struct {
		k uint64
		p profile
	}
	var ps []loaded
	// Symbols are looked up (or added, as instruments seen only in
	// holdings are) in this engine's table.
	e.inst.mu.Lock()
	d.inst = func(s string) uint32 {
		i, _ := e.inst.ensure(s)
		return i
	}
	for range n {
		if d.err != nil {
			break
		}
		l := loaded{k: d.uvarint()}
		decodeValue(d, reflect.ValueOf(&l.p).Elem())
		held := d.uvarint()
		if held > uint64(len(d.b)) {
			d.fail()
		}
		for range held {
			if d.err != nil {
				break
			}
			if s := d.string(); s != "" {
				l.p.addIssue(d.inst(s))
			}
		}
		ps = append(ps, l)
	}
	e.inst.mu.Unlock()
	if d.err == nil && len(d.b) != 0 {
		d.err = errors.New("risk: snapshot: trailing bytes")
	}
	if d.err != nil {
		return 0, d.err
	}
	for i := range ps {
		sh := &e.shards[ps[i].k%numShards]
		sh.mu.Lock()
		p := sh.get(ps[i].k, true)
		frozen := p.flags & flagFrozen
		*p = ps[i].p
		p.flags = p.flags&^flagFrozen | frozen
		sh.mu.Unlock()
	}
	return len(ps), nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// encoder writes profiles; tab names the engine's instruments by index.
type encoder struct {
	b   []byte
	tab []string
	err error
}

// value appends v, field by field; unexported fields are read through
// reflection, and a field inst (an instrument's index) as its symbol.
func (c *encoder) value(v reflect.Value) {
	switch v.Kind() {
	case reflect.Bool:
		if v.Bool() {
			c.b = append(c.b, 1)
		} else {
			c.b = append(c.b, 0)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		c.b = binary.AppendVarint(c.b, v.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		c.b = binary.AppendUvarint(c.b, v.Uint())
	case reflect.Float32, reflect.Float64:
		c.b = binary.AppendUvarint(c.b, math.Float64bits(v.Float()))
	case reflect.String:
		c.b = appendString(c.b, v.String())
	case reflect.Array:
		for i := range v.Len() {
			c.value(v.Index(i))
		}
	case reflect.Slice:
		c.b = binary.AppendUvarint(c.b, uint64(v.Len()))
		for i := range v.Len() {
			c.value(v.Index(i))
		}
	case reflect.Pointer:
		if v.IsNil() {
			c.b = append(c.b, 0)
			return
		}
		c.b = append(c.b, 1)
		c.value(v.Elem())
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).Name == "inst" && v.Field(i).Kind() == reflect.Uint32 {
				sym := ""
				if k := v.Field(i).Uint(); k < uint64(len(c.tab)) {
					sym = c.tab[k]
				}
				c.b = appendString(c.b, sym)
				continue
			}
			c.value(v.Field(i))
		}
	default:
		if c.err == nil {
			c.err = fmt.Errorf("risk: snapshot of a %s", v.Type())
		}
	}
}

type decoder struct {
	b    []byte
	err  error
	inst func(symbol string) uint32 // an instrument's index in the engine loading
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errors.New("risk: snapshot cut short or corrupt")
	}
	d.b = nil
}

func (d *decoder) uvarint() uint64 {
	x, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return x
}

func (d *decoder) varint() int64 {
	x, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return x
}

func (d *decoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// decodeValue reads into v, which is addressable; unexported fields are
// set through their address.
func decodeValue(d *decoder, v reflect.Value) {
	if d.err != nil {
		return
	}
	if !v.CanSet() {
		v = reflect.NewAt(v.Type(), unsafe.Pointer(v.UnsafeAddr())).Elem()
	}
	switch v.Kind() {
	case reflect.Bool:
		if len(d.b) == 0 || d.b[0] > 1 {
			d.fail()
			return
		}
		v.SetBool(d.b[0] == 1)
		d.b = d.b[1:]
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		x := d.varint()
		if v.OverflowInt(x) {
			d.fail()
			return
		}
		v.SetInt(x)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		x := d.uvarint()
		if v.OverflowUint(x) {
			d.fail()
			return
		}
		v.SetUint(x)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(math.Float64frombits(d.uvarint()))
	case reflect.String:
		v.SetString(d.string())
	case reflect.Array:
		for i := range v.Len() {
			decodeValue(d, v.Index(i))
		}
	case reflect.Slice:
		n := d.uvarint()
		if n > uint64(len(d.b)) { // every element takes a byte at least
			d.fail()
			return
		}
		s := reflect.MakeSlice(v.Type(), int(n), int(n))
		for i := range int(n) {
			decodeValue(d, s.Index(i))
		}
		v.Set(s)
	case reflect.Pointer:
		if len(d.b) == 0 || d.b[0] > 1 {
			d.fail()
			return
		}
		nonNil := d.b[0] == 1
		d.b = d.b[1:]
		if nonNil {
			p := reflect.New(v.Type().Elem())
			decodeValue(d, p.Elem())
			v.Set(p)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Field(i)
			if v.Type().Field(i).Name == "inst" && f.Kind() == reflect.Uint32 {
				if s := d.string(); s != "" && d.err == nil {
					reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().SetUint(uint64(d.inst(s)))
				}
				continue
			}
			decodeValue(d, f)
		}
	default:
		d.err = fmt.Errorf("risk: snapshot of a %s", v.Type())
	}
}
