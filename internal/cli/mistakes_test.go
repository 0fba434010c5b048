package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// run runs the kabuto command and returns its exit code and output.
func runKabuto(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errs bytes.Buffer
	code := Run(context.Background(), args, &out, &errs)
	return code, out.String(), errs.String()
}

// TestUnsupportedDatabase: a --db URL of a database Kabuto does not run
// on is named as such, with the ones it runs on, not opened as a SQLite
// file of that name; a password in the URL is not echoed.
func TestUnsupportedDatabase(t *testing.T) {
	for _, tt := range []struct {
		args   []string
		scheme string
	}{
		{[]string{"serve", "--db", "mysql://x"}, "mysql"},
		{[]string{"migrate", "--db", "mongodb://admin:hunter2@db.example/k"}, "mongodb"},
		{[]string{"apikey", "--list", "--db", "MySQL://root@localhost/kabuto"}, "MySQL"},
		{[]string{"audit", "--db", "redis://localhost:6379"}, "redis"},
	} {
		t.Run(tt.scheme, func(t *testing.T) {
			code, _, errs := runKabuto(t, tt.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2 (a usage mistake)", code)
			}
			for _, want := range []string{`unsupported database "` + tt.scheme + `"`, "PostgreSQL (--db postgres://", "SQLite"} {
				if !strings.Contains(errs, want) {
					t.Errorf("message %q does not say %q", errs, want)
				}
			}
			if strings.Contains(errs, "sqlite at") || strings.Contains(errs, "hunter2") {
				t.Errorf("message %q opens the URL as a file or echoes its password", errs)
			}
		})
	}
}

// TestVersionText: the version names the module version, the commit and
// its time, and the Go that built it, or says why the commit is unknown.
func TestVersionText(t *testing.T) {
	for _, tt := range []struct {
		name        string
		b           build
		short       string
		long, notIn []string
	}{
		{"release", build{version: "v1.4.0", revision: "0123456789abcdef0123", time: "2026-11-30T10:00:00Z", goVersion: "go1.26.0"}, "v1.4.0",
			[]string{"kabuto v1.4.0\n", "commit 0123456789abcdef0123 of 2026-11-30T10:00:00Z\n", "built with go1.26.0 for "}, []string{"uncommitted", "dev"}},
		{"dirty checkout", build{revision: "0123456789abcdef0123", time: "2026-11-30T10:00:00Z", modified: true, goVersion: "go1.26.0"}, "dev-0123456789ab+dirty",
			[]string{"development build", "commit 0123456789abcdef0123 of 2026-11-30T10:00:00Z, with uncommitted changes"}, nil},
		{"no vcs", build{goVersion: "go1.26.0"}, "dev",
			[]string{"commit unknown (built outside a git checkout or with -buildvcs=false)", "go1.26.0"}, []string{"kabuto dev"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.b.short(); got != tt.short {
				t.Errorf("short = %q, want %q", got, tt.short)
			}
			long := tt.b.long()
			for _, w := range tt.long {
				if !strings.Contains(long, w) {
					t.Errorf("long %q lacks %q", long, w)
				}
			}
			for _, w := range tt.notIn {
				if strings.Contains(long, w) {
					t.Errorf("long %q has %q", long, w)
				}
			}
		})
	}
	code, out, _ := runKabuto(t, "version")
	if code != 0 || !strings.HasPrefix(out, "kabuto ") || !strings.Contains(out, "built with go") || out == "kabuto dev\n" {
		t.Errorf("kabuto version: exit %d: %q", code, out)
	}
}

// TestAPIKeyList: --list shows the ids --revoke takes, with names,
// scopes and times, never a secret; a revoked key shows when; an id
// that is no key's is named.
func TestAPIKeyList(t *testing.T) {
	dir := t.TempDir()
	code, out, errs := runKabuto(t, "apikey", "--data", dir, "--log-level", "warn", "--create", "core-banking", "--scopes", "broker,events")
	if code != 0 {
		t.Fatalf("create: %d %s", code, errs)
	}
	id := regexp.MustCompile(`id:\s+(key_[0-9a-f]+)`).FindStringSubmatch(out)
	secret := regexp.MustCompile(`secret:\s+(kb_\S+)`).FindStringSubmatch(out)
	if id == nil || secret == nil {
		t.Fatalf("create printed %q", out)
	}
	for _, tt := range []struct {
		name     string
		args     []string
		code     int
		out, err []string
	}{
		{"list", []string{"--list"}, 0, []string{"ID", "LAST USED", "REVOKED", id[1], "core-banking", "broker,events", "never"}, nil},
		{"two actions", []string{"--list", "--revoke", id[1]}, 2, nil, []string{"give one of --list, --create NAME or --revoke ID"}},
		{"none", nil, 2, nil, []string{"give one of --list"}},
		{"unknown id", []string{"--revoke", "key_000000000000"}, 1, nil, []string{"--revoke key_000000000000: no API key has this id (see kabuto apikey --list)"}},
		{"revoke", []string{"--revoke", id[1]}, 0, []string{"revoked " + id[1]}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := runKabuto(t, append([]string{"apikey", "--data", dir, "--log-level", "warn"}, tt.args...)...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d: %s %s", code, tt.code, out, errs)
			}
			for _, w := range tt.out {
				if !strings.Contains(out, w) {
					t.Errorf("output %q lacks %q", out, w)
				}
			}
			for _, w := range tt.err {
				if !strings.Contains(errs, w) {
					t.Errorf("message %q lacks %q", errs, w)
				}
			}
			if strings.Contains(out+errs, secret[1]) {
				t.Errorf("the secret is shown again: %q", out)
			}
		})
	}
	_, out, _ = runKabuto(t, "apikey", "--data", dir, "--log-level", "warn", "--list")
	if line := regexp.MustCompile(id[1] + `.*`).FindString(out); !regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d UTC\s*$`).MatchString(line) {
		t.Errorf("revoked key's line %q does not end with its revocation time", line)
	}
}

// TestPolicyCheckAllErrors: one --check names every mistake in a policy
// (rule, line, field), and a threshold left out as missing.
func TestPolicyCheckAllErrors(t *testing.T) {
	for _, tt := range []struct {
		name, src string
		want      []string
	}{
		{"missing threshold", "version: x\nthresholds: {challenge: 30, challenge_phishing_resistant: 50, deny: 90}\nrules: []\n",
			[]string{"line 2: field thresholds.hold: missing"}},
		{"several", "version: x\nthresholds: {challenge: 30, hold: 70, deny: 90}\nrules:\n  - {id: r1, when: account.frozen, weight: 500, reason: x}\n  - {id: r2, when: account.nope, weight: 5, reason: x}\n  - {id: r3, when: account.frozen, weight: 5, reason: Bad}\n",
			[]string{"line 2: field thresholds.challenge_phishing_resistant: missing", "line 4: rule r1: field weight:", "line 5: rule r2: field when: CEL", "line 6: rule r3: field reason:", "4 errors"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "p.yaml")
			if err := os.WriteFile(f, []byte(tt.src), 0o600); err != nil {
				t.Fatal(err)
			}
			code, _, errs := runKabuto(t, "policy", "--check", f)
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			for _, w := range tt.want {
				if !strings.Contains(errs, w) {
					t.Errorf("message %q lacks %q", errs, w)
				}
			}
			if strings.Contains(errs, "challenge <=") {
				t.Errorf("a missing threshold reported as out of order: %q", errs)
			}
		})
	}
}
