package kafkacluster

import (
	"slices"
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
		err  string
	}{
		{"kafka://127.0.0.1:9092", []string{"127.0.0.1:9092"}, ""},
		{"kafka://a:9092,b:9093", []string{"a:9092", "b:9093"}, ""},
		{"KAFKA://kafka-1.example.jp", []string{"kafka-1.example.jp:9092"}, ""},
		{"kafka://[::1]:9092,[fe80::1]", []string{"[::1]:9092", "[fe80::1]:9092"}, ""},
		{"nats://127.0.0.1:4222", nil, "want kafka://"},
		{"kafka://", nil, "no broker"},
		{"kafka://a:9092,", nil, "empty broker"},
		{"kafka://a:0", nil, "want 1 to 65535"},
		{"kafka://a:99999", nil, "want 1 to 65535"},
		{"kafka://a:09092", nil, "want 1 to 65535"},
		{"kafka://a:x", nil, "want 1 to 65535"},
		{"kafka://user@a:9092", nil, "no user"},
		{"kafka://a:9092/path", nil, "no user, path"},
		{"kafka://::1:9092", nil, "brackets"},
		{"kafka://:9092", nil, "no host"},
		{"kafka://a b:9092", nil, "spaces"},
		{"kafka://a$b:9092", nil, "bad host name"},
	} {
		got, err := ParseURL(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseURL(%q) = %v, %v: want an error with %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("ParseURL(%q) = %v, %v: want %v", c.in, got, err, c.want)
		}
	}
}

// FuzzParseURL: no input makes ParseURL panic, and what it accepts it
// returns as brokers that parse again to themselves.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"kafka://a:9092", "kafka://a,b:1", "kafka://[::1]:9092", "kafka://", "kafka://a:", "kafka://[::1", "kafka://a:9092,,b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		bs, err := ParseURL(s)
		if err != nil {
			return
		}
		if len(bs) == 0 {
			t.Fatalf("ParseURL(%q): no broker and no error", s)
		}
		again, err := ParseURL("kafka://" + strings.Join(bs, ","))
		if err != nil || !slices.Equal(again, bs) {
			t.Fatalf("ParseURL(%q) = %v; parsed again: %v, %v", s, bs, again, err)
		}
	})
}
