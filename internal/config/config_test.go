package config

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestApply(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "db")
	os.WriteFile(secret, []byte("postgres://u:pw@h/db\n"), 0o600)
	t.Setenv("KABUTO_ADDR", "127.0.0.1:9")
	t.Setenv("KABUTO_DB_FILE", secret)
	t.Setenv("KABUTO_USERS", "12")
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8080", "")
	db := fs.String("db", "", "")
	users := fs.Int("users", 3, "")
	data := fs.String("data", "d", "")
	if err := fs.Parse([]string{"--users", "5"}); err != nil {
		t.Fatal(err)
	}
	if err := Apply(fs); err != nil {
		t.Fatal(err)
	}
	if *addr != "127.0.0.1:9" || *db != "postgres://u:pw@h/db" || *users != 5 || *data != "d" {
		t.Errorf("got addr %q db %q users %d data %q", *addr, *db, *users, *data)
	}
	t.Setenv("KABUTO_USERS", "many")
	fs = flag.NewFlagSet("x", flag.ContinueOnError)
	fs.Int("users", 3, "")
	fs.Parse(nil)
	if err := Apply(fs); err == nil || !strings.Contains(err.Error(), "KABUTO_USERS") {
		t.Errorf("bad value: %v", err)
	}
}
