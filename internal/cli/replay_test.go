package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const replayStream = `{"id":"i1","type":"instrument","time":"2025-04-08T08:00:00+09:00","symbol":"3001","name":"Thin","market":"TSE_STANDARD","currency":"JPY","price":105,"price_jpy":105,"adv_shares":80000,"lot":100}
{"id":"a1","type":"account","time":"2025-04-08T08:00:00+09:00","account":"C1","opened":"2019-04-01","cash_jpy":500000,"holdings":[{"symbol":"3001","qty":100,"cost_jpy":10000,"kind":"cash"}],"factors":["password","email_otp"],"email_hash":"e","phone_hash":"p","bank_hash":"b","foreign_enabled":false,"margin_enabled":false}
{"id":"l1","type":"login","time":"2025-04-08T09:00:00+09:00","account":"C1","session":"s1","ip":"198.51.100.7","asn":16509,"country":"US","device":"x","ua":"UA","channel":"web","method":"password","factors":["password","email_otp"],"ok":true}
{"id":"q1","type":"quote","time":"2025-04-08T09:00:01+09:00"}
{"id":"w1","type":"withdrawal","time":"2025-04-08T09:01:00+09:00","account":"C1","session":"s1","ip":"198.51.100.7","asn":16509,"country":"US","device":"x","ua":"UA","channel":"web","amount_jpy":400000,"bank_hash":"b"}
`

func TestReplayCommand(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	os.WriteFile(in, []byte(replayStream), 0o600)
	run := func(args ...string) (int, string, string) {
		var out, errs bytes.Buffer
		code := Run(context.Background(), args, &out, &errs)
		return code, out.String(), errs.String()
	}
	code, _, errs := run("replay", "--in", in, "--out", filepath.Join(dir, "d1.jsonl"), "--alerts", filepath.Join(dir, "a1.jsonl"))
	if code != 0 {
		t.Fatalf("replay: %d %s", code, errs)
	}
	if !strings.Contains(errs, "records  4 (2 customer actions)") || !strings.Contains(errs, "skipped  quote 1") || !strings.Contains(errs, "policy   builtin-") {
		t.Errorf("summary:\n%s", errs)
	}
	d1, _ := os.ReadFile(filepath.Join(dir, "d1.jsonl"))
	lines := strings.Split(strings.TrimSpace(string(d1)), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], `"event":"w1"`) || strings.Contains(lines[1], `"action":"allow"`) {
		t.Fatalf("decisions:\n%s", d1)
	}
	// Standard input and output give the same bytes.
	old := os.Stdin
	f, _ := os.Open(in)
	os.Stdin = f
	code, out, _ := run("replay", "--in", "-", "--out", "-")
	os.Stdin = old
	f.Close()
	if code != 0 || out != string(d1) {
		t.Errorf("stdin/stdout replay differs:\n%s\nvs\n%s", out, d1)
	}
	bad := filepath.Join(dir, "bad.jsonl")
	os.WriteFile(bad, []byte(strings.Replace(replayStream, `"amount_jpy":400000`, `"amount_jpy":-1`, 1)), 0o600)
	code, _, errs = run("replay", "--in", bad, "--out", filepath.Join(dir, "d2.jsonl"))
	if code != 1 || !strings.Contains(errs, "line 5: field amount_jpy: must be a positive integer") {
		t.Errorf("bad record: %d %s", code, errs)
	}
	code, _, errs = run("replay", "--in", in)
	if code != 2 || !strings.Contains(errs, "give --in FILE and --out FILE") {
		t.Errorf("no --out: %d %s", code, errs)
	}
	pol := filepath.Join(dir, "p.yaml")
	os.WriteFile(pol, []byte("version: t1\nthresholds: {challenge: 30, challenge_phishing_resistant: 50, hold: 70, deny: 90}\nrules:\n  - id: broken\n    when: 'order.value_jpy >'\n    weight: 10\n    reason: broken\n"), 0o600)
	code, _, errs = run("policy", "--check", pol)
	if code != 1 || !strings.Contains(errs, "broken") || !strings.Contains(errs, "line") {
		t.Errorf("bad policy: %d %s", code, errs)
	}
	code, out, _ = run("policy")
	if code != 0 || !strings.Contains(out, "liquidate_concentrate") {
		t.Errorf("policy print: %d", code)
	}
	code, out, _ = run("policy", "--variables")
	if code != 0 || !strings.Contains(out, "order.value_jpy") || !strings.Contains(out, "session.sold_share") {
		t.Errorf("policy --variables: %d %.200s", code, out)
	}
	code, _, errs = run("replay", "--in", in, "--parse-only")
	if code != 0 || !strings.Contains(errs, "parsed 4 records") {
		t.Errorf("parse-only: %d %s", code, errs)
	}
}

func TestAuditCommand(t *testing.T) {
	dir := t.TempDir()
	var out, errs bytes.Buffer
	if code := Run(context.Background(), []string{"audit", "--data", dir}, &out, &errs); code != 0 || !strings.Contains(out.String(), "intact: 0 entries") {
		t.Fatalf("empty trail: %d %s %s", code, out.String(), errs.String())
	}
}
