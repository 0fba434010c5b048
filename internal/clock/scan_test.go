package clock

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// wallClockAllowed lists the non-test files outside this package that may
// read the wall clock or define a time zone themselves, each with the
// reason. Keep it short: a component that reads the time takes a Clock.
var wallClockAllowed = map[string]string{}

// TestOneClock scans the module's non-test Go files: none outside package
// clock calls time.Now, time.Since or time.Until, or makes a time zone
// (time.FixedZone, time.LoadLocation), so every time Kabuto reads comes
// from a Clock that a test can replace, and JST is defined once.
func TestOneClock(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	banned := map[string]bool{"Now": true, "Since": true, "Until": true, "FixedZone": true, "LoadLocation": true}
	seen := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules" || rel == "internal/clock") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") {
			return nil
		}
		seen++
		for _, use := range wallClockUses(t, path, banned) {
			if _, ok := wallClockAllowed[rel]; ok {
				continue
			}
			t.Errorf("%s:%d: time.%s: take a clock.Clock (or use clock.JST) instead", rel, use.line, use.name)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen < 50 {
		t.Fatalf("scanned %d files under %s: the walk missed the module", seen, root)
	}
}

type wallClockUse struct {
	name string
	line int
}

// wallClockUses returns the uses of the banned functions of package time
// in the file at path, whatever name the file imports "time" under. A
// use need not be a call: c.Now = time.Now reads the wall clock too.
func wallClockUses(t *testing.T, path string, banned map[string]bool) []wallClockUse {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	names := map[string]bool{}
	for _, im := range f.Imports {
		if p, _ := strconv.Unquote(im.Path.Value); p == "time" {
			name := "time"
			if im.Name != nil {
				name = im.Name.Name
			}
			names[name] = true
		}
	}
	var uses []wallClockUse
	ast.Inspect(f, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if id, ok := sel.X.(*ast.Ident); ok && names[id.Name] && banned[sel.Sel.Name] {
			uses = append(uses, wallClockUse{sel.Sel.Name, fset.Position(sel.Pos()).Line})
		}
		return true
	})
	return uses
}

// TestWallClockUses checks the scanner itself: it finds a call, a function
// value and a renamed import, and not a method of the same name.
func TestWallClockUses(t *testing.T) {
	dir := t.TempDir()
	src := `package x

import (
	"time"
	tm "time"
)

var zone = tm.FixedZone("X", 0)

type c struct{}

func (c) Now() time.Time { return time.Time{} }

func f() {
	_ = time.Now()
	now := time.Now
	_ = now
	_ = c{}.Now()
	_ = time.Since(time.Time{})
}
`
	path := filepath.Join(dir, "x.go")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	got := wallClockUses(t, path, map[string]bool{"Now": true, "Since": true, "FixedZone": true})
	want := []wallClockUse{{"FixedZone", 8}, {"Now", 15}, {"Now", 16}, {"Since", 19}}
	if len(got) != len(want) {
		t.Fatalf("uses = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("uses = %v, want %v", got, want)
		}
	}
}
