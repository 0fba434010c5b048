package server

import (
	"bytes"
	"encoding/json"
	"testing"
)

// TestSplitArray checks the events endpoint's array splitter against
// encoding/json: a valid array gives the same elements; an array whose own
// syntax is broken is refused. (Each element is then decoded strictly,
// so a broken element is refused there, naming it.)
func TestSplitArray(t *testing.T) {
	valid := []string{
		`[]`, ` [ ] `, `[{}]`, `[{"a":1}]`, "[\n{\"a\":1} ,\r\n\t{\"b\":[1,2,{\"c\":\"]}\"}]}\n]",
		`[{"ua":"Mozilla \"quoted\" [x] {y}","n":-1.5e3,"t":true,"z":null}]`,
		`[{"s":"back\\slash\\"},{"s":"\\\""}]`, `[1,"two",[3],{"four":4},null,true]`, `[[],{}]`,
	}
	for _, in := range valid {
		var want []json.RawMessage
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		got, err := splitArray(bytes.TrimSpace([]byte(in)))
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if len(got) != len(want) {
			t.Errorf("%s: %d elements, want %d", in, len(got), len(want))
			continue
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Errorf("%s: element %d is %s, want %s", in, i, got[i], want[i])
			}
		}
	}
	broken := []string{
		`[`, `[{}`, `[{},]`, `[,{}]`, `[{}{}]`, `[{}] x`, `[{}]]`, `[{"a":"unterminated}]`, `[{"a":1]`, `[}`, `[{}:{}]`,
	}
	for _, in := range broken {
		if got, err := splitArray([]byte(in)); err == nil {
			// What the splitter passes on must not all be valid JSON.
			ok := true
			for _, e := range got {
				ok = ok && json.Valid(e)
			}
			if ok {
				t.Errorf("%s: split into %q, all valid", in, got)
			}
		}
	}
}

// FuzzSplitArray checks the splitter against encoding/json on any input:
// an array encoding/json reads splits into the same elements, and an
// input encoding/json refuses is never split into elements that are all
// valid JSON.
func FuzzSplitArray(f *testing.F) {
	for _, s := range []string{`[]`, `[{"a":"]"}]`, `[{"a":[1,{"b":"\""}]},{}]`, `[{},]`, `[{"a":1]`, `[1 2]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		in = bytes.TrimSpace(in)
		if len(in) == 0 || in[0] != '[' {
			return
		}
		var want []json.RawMessage
		wantErr := json.Unmarshal(in, &want)
		got, err := splitArray(in)
		if wantErr == nil {
			if err != nil {
				t.Fatalf("%q: %v; encoding/json reads it", in, err)
			}
			if len(got) != len(want) {
				t.Fatalf("%q: %d elements, want %d", in, len(got), len(want))
			}
			for i := range got {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("%q: element %d is %q, want %q", in, i, got[i], want[i])
				}
			}
			return
		}
		if err != nil {
			return
		}
		for _, e := range got {
			if !json.Valid(e) {
				return
			}
		}
		t.Fatalf("%q: split into %q, all valid, but encoding/json refuses it: %v", in, got, wantErr)
	})
}
