package reason

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// domainPackages hold the business rules: they refuse with E and speak no
// HTTP.
var domainPackages = []string{"analyst", "broker", "cases", "identity", "pipeline", "session", "notify", "reason"}

// TestCatalogueWordsEveryEntry: every entry has a status, Japanese words
// in Japanese, English words in English, the same parameters in both, and
// no "日本語 / English" pair.
func TestCatalogueWordsEveryEntry(t *testing.T) {
	for key, c := range Catalogue {
		if c.Status < 200 || c.Status > 599 {
			t.Errorf("%s: status %d", key, c.Status)
		}
		if c.JA == "" || c.EN == "" {
			t.Errorf("%s: words missing (ja %q, en %q)", key, c.JA, c.EN)
			continue
		}
		if !hasJapanese(c.JA) {
			t.Errorf("%s: the Japanese words %q have no Japanese", key, c.JA)
		}
		if hasJapanese(c.EN) {
			t.Errorf("%s: the English words %q have Japanese", key, c.EN)
		}
		if bilingual.MatchString(c.JA) || bilingual.MatchString(c.EN) {
			t.Errorf("%s: bilingual words", key)
		}
		if c.EN[0] < 'A' || c.EN[0] > 'Z' {
			t.Errorf("%s: English words %q do not start with a capital", key, c.EN)
		}
		ja, en := Placeholders(c.JA), Placeholders(c.EN)
		slices.Sort(ja)
		slices.Sort(en)
		if !slices.Equal(ja, en) {
			t.Errorf("%s: parameters differ: ja %v, en %v", key, ja, en)
		}
		code, _, _ := strings.Cut(key, ".")
		if _, ok := Catalogue[code]; !ok {
			t.Errorf("%s: its code %s has no general words", key, code)
		}
	}
}

func hasJapanese(s string) bool {
	for _, r := range s {
		if unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana) {
			return true
		}
	}
	return false
}

// bilingual matches a "日本語 / English" message.
var bilingual = regexp.MustCompile(`[\p{Han}\p{Hiragana}\p{Katakana}。）」].* / .*[A-Za-z]`)

func TestTextFillsParameters(t *testing.T) {
	e := E("insufficient_cash.withdraw", "amount_jpy", Yen(1234567))
	if got := e.Text("ja"); got != "出金できる金額を超えています（ご依頼 1,234,567円）" {
		t.Errorf("ja: %q", got)
	}
	if got := e.Text("en"); got != "That is more than you can withdraw (you asked for ¥1,234,567)" {
		t.Errorf("en: %q", got)
	}
	if e.Code != InsufficientCash || e.HTTPStatus() != 409 || e.ParamMap()["amount_jpy"] != int64(1234567) {
		t.Errorf("code %s, status %d, params %v", e.Code, e.HTTPStatus(), e.ParamMap())
	}
	if e.Error() != "insufficient_cash: That is more than you can withdraw (you asked for ¥1,234,567)" {
		t.Errorf("Error() = %q", e.Error())
	}
	s := E("step_up_required.factor", "factor", W("factor", "phishing_resistant"))
	if s.Text("ja") != "この操作はパスキーで確認してから行ってください" || s.ParamMap()["factor"] != "phishing_resistant" {
		t.Errorf("%q %v", s.Text("ja"), s.ParamMap())
	}
	// A key the catalogue does not know falls back on its code's words.
	if u := E("denied.no_such_variant"); u.HTTPStatus() != 403 || u.Text("en") != Catalogue[Denied].EN {
		t.Errorf("unknown variant: %d %q", u.HTTPStatus(), u.Text("en"))
	}
	// A missing parameter shows as "?", never as the raw placeholder.
	if m := E(BadLot, "symbol", "7203"); strings.Contains(m.Text("en"), "{") {
		t.Errorf("missing parameter left a placeholder: %q", m.Text("en"))
	}
	// Legacy refusals keep their own words.
	l := New(418, Forbidden, "no %s", "way")
	if l.Text("ja") != Catalogue[Forbidden].JA || l.Text("en") != "no way" || l.HTTPStatus() != 418 {
		t.Errorf("legacy: %q %q %d", l.Text("ja"), l.Text("en"), l.HTTPStatus())
	}
	// A legacy refusal (a remote API's) whose code's words need parameters
	// it does not have keeps its own words rather than show "{symbol}".
	if r := New(400, UnknownSymbol, "no instrument \"X\""); r.Text("ja") != "no instrument \"X\"" {
		t.Errorf("remote refusal in Japanese: %q", r.Text("ja"))
	}
}

// source is the module's Go code as parsed files, with each package's
// string constants.
type source struct {
	fset   *token.FileSet
	files  map[string]*ast.File // by path relative to the module root
	consts map[string]map[string]string
}

func parseModule(t *testing.T) *source {
	t.Helper()
	root := filepath.Join("..", "..")
	s := &source{fset: token.NewFileSet(), files: map[string]*ast.File{}, consts: map[string]map[string]string{}}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules") && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(s.fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		s.files[filepath.ToSlash(rel)] = f
		pkg := f.Name.Name
		if s.consts[pkg] == nil {
			s.consts[pkg] = map[string]string{}
		}
		for _, decl := range f.Decls {
			g, ok := decl.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, spec := range g.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if i < len(vs.Values) {
						if v, ok := stringLit(vs.Values[i]); ok {
							s.consts[pkg][name.Name] = v
						}
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.files) < 50 {
		t.Fatalf("parsed only %d files: is the test run from internal/reason?", len(s.files))
	}
	return s
}

func stringLit(e ast.Expr) (string, bool) {
	b, ok := e.(*ast.BasicLit)
	if !ok || b.Kind != token.STRING {
		return "", false
	}
	v, err := strconv.Unquote(b.Value)
	return v, err == nil
}

// resolve returns the string value of e in package pkg: a literal, a
// constant of pkg, or a constant of another package (pkg.Name).
func (s *source) resolve(pkg string, e ast.Expr) (string, bool) {
	if v, ok := stringLit(e); ok {
		return v, true
	}
	switch e := e.(type) {
	case *ast.Ident:
		v, ok := s.consts[pkg][e.Name]
		return v, ok
	case *ast.SelectorExpr:
		if x, ok := e.X.(*ast.Ident); ok {
			v, ok := s.consts[x.Name][e.Sel.Name]
			return v, ok
		}
	case *ast.BinaryExpr:
		if e.Op == token.ADD {
			x, ok1 := s.resolve(pkg, e.X)
			y, ok2 := s.resolve(pkg, e.Y)
			return x + y, ok1 && ok2
		}
	}
	return "", false
}

// reasonCall reports whether call is reason.<name>(…) (or <name>(…) inside
// package reason).
func reasonCall(pkg string, call *ast.CallExpr, name string) bool {
	switch f := call.Fun.(type) {
	case *ast.SelectorExpr:
		x, ok := f.X.(*ast.Ident)
		return ok && x.Name == "reason" && f.Sel.Name == name
	case *ast.Ident:
		return pkg == "reason" && f.Name == name
	}
	return false
}

// TestEveryCodeUsedIsCatalogued scans every non-test Go file of the module
// for refusals (reason.E, reason.New, reason.Error literals) and the codes
// declared in this package: each key or code must have an entry with a
// status and words in both languages, and each E must pass every
// parameter its words name.
func TestEveryCodeUsedIsCatalogued(t *testing.T) {
	s := parseModule(t)
	for name, code := range s.consts["reason"] {
		if ast.IsExported(name) {
			if _, ok := Catalogue[code]; !ok {
				t.Errorf("code %s (reason.%s) is not in the catalogue", code, name)
			}
		}
	}
	seen := 0
	used := map[string]bool{}
	for path, f := range s.files {
		pkg := f.Name.Name
		ast.Inspect(f, func(n ast.Node) bool {
			pos := func() string { return path + ":" + strconv.Itoa(s.fset.Position(n.Pos()).Line) }
			switch n := n.(type) {
			case *ast.CallExpr:
				switch {
				case reasonCall(pkg, n, "E"):
					if len(n.Args) == 0 {
						return true
					}
					key, ok := s.resolve(pkg, n.Args[0])
					if !ok {
						if !(pkg == "reason" && path == "internal/reason/reason.go") {
							t.Errorf("%s: reason.E with a key that is not a constant", pos())
						}
						return true
					}
					seen++
					used[key] = true
					c, ok := Catalogue[key]
					if !ok {
						t.Errorf("%s: key %q is not in the catalogue", pos(), key)
						return true
					}
					var names []string
					for i := 1; i < len(n.Args); i += 2 {
						if v, ok := s.resolve(pkg, n.Args[i]); ok {
							names = append(names, v)
						} else {
							t.Errorf("%s: parameter %d of %q is not named by a constant", pos(), i/2+1, key)
						}
					}
					for _, p := range Placeholders(c.EN) {
						if !slices.Contains(names, p) {
							t.Errorf("%s: %q names {%s} but the call passes only %v", pos(), key, p, names)
						}
					}
				case reasonCall(pkg, n, "New"):
					if len(n.Args) < 2 {
						return true
					}
					if code, ok := s.resolve(pkg, n.Args[1]); ok {
						seen++
						if _, ok := Catalogue[code]; !ok {
							t.Errorf("%s: code %q is not in the catalogue", pos(), code)
						}
					}
				}
			case *ast.CompositeLit:
				sel, ok := n.Type.(*ast.SelectorExpr)
				if !ok || sel.Sel.Name != "Error" || !isIdent(sel.X, "reason") {
					return true
				}
				for _, el := range n.Elts {
					if kv, ok := el.(*ast.KeyValueExpr); ok && isIdent(kv.Key, "Code") {
						if code, ok := s.resolve(pkg, kv.Value); ok {
							seen++
							if _, ok := Catalogue[code]; !ok {
								t.Errorf("%s: code %q is not in the catalogue", pos(), code)
							}
						}
					}
				}
			}
			return true
		})
	}
	for key := range Catalogue {
		if strings.Contains(key, ".") && !used[key] {
			t.Errorf("catalogue entry %s is used nowhere: remove it", key)
		}
	}
	if seen < 100 {
		t.Errorf("found only %d refusals: is the scan still looking at the right calls?", seen)
	}
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}

// TestDomainPackagesSpeakNoHTTP: the packages that hold the business rules
// import no net/http (status codes, cookies and clients belong to the
// HTTP layers: server, web, console, webhook), refuse with catalogue keys
// (no reason.New, which carries a status and words of its own), and carry
// no "日本語 / English" text in their refusals.
func TestDomainPackagesSpeakNoHTTP(t *testing.T) {
	s := parseModule(t)
	checked := map[string]int{}
	for path, f := range s.files {
		dir := strings.TrimPrefix(filepath.ToSlash(filepath.Dir(path)), "internal/")
		if !slices.Contains(domainPackages, dir) {
			continue
		}
		checked[dir]++
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if p == "net/http" || strings.HasPrefix(p, "net/http/") {
				t.Errorf("%s imports %s", path, p)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			if reasonCall(f.Name.Name, call, "New") {
				t.Errorf("%s:%d: reason.New in a domain package: refuse with reason.E and a catalogue key", path, s.fset.Position(call.Pos()).Line)
			}
			if reasonCall(f.Name.Name, call, "E") {
				for _, a := range call.Args {
					if v, ok := stringLit(a); ok && bilingual.MatchString(v) {
						t.Errorf("%s:%d: bilingual text in a refusal: %q", path, s.fset.Position(call.Pos()).Line, v)
					}
				}
			}
			return true
		})
	}
	for _, p := range domainPackages {
		if checked[p] == 0 {
			t.Errorf("no files of internal/%s found", p)
		}
	}
	if _, err := os.Stat(filepath.Join("..", "..", "go.mod")); err != nil {
		t.Fatal("not run inside the module:", err)
	}
}

// newAllowed are the only files that may still call reason.New: the API's
// parser errors of JSON and event batches (their words are pinned by the
// events contract), and this package, which defines it.
var newAllowed = []string{"internal/server/server.go", "internal/server/guard_api.go", "internal/reason/reason.go"}

// twoLanguages matches words in both languages in one string, "English ·
// 日本語" or "日本語 / English" and the like.
var twoLanguages = regexp.MustCompile(`[A-Za-z][^\p{Han}\p{Hiragana}\p{Katakana}]* [·/] .*[\p{Han}\p{Hiragana}\p{Katakana}]|[\p{Han}\p{Hiragana}\p{Katakana}。）」].* [·/] .*[A-Za-z]`)

// TestRefusalsComeFromTheCatalogue: outside newAllowed no file builds a
// refusal with reason.New (a status and words of its own, in one language
// or both glued together), and no refusal passes words in both languages
// as a parameter, so the console and the back-office API word refusals
// from the catalogue, in the reader's language.
func TestRefusalsComeFromTheCatalogue(t *testing.T) {
	s := parseModule(t)
	checked := map[string]bool{}
	for path, f := range s.files {
		if strings.HasPrefix(path, "internal/console/") || path == "internal/server/backoffice_api.go" {
			checked[path] = true
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			pos := func() string { return path + ":" + strconv.Itoa(s.fset.Position(call.Pos()).Line) }
			if reasonCall(f.Name.Name, call, "New") && !slices.Contains(newAllowed, path) {
				t.Errorf("%s: reason.New: refuse with reason.E and a catalogue entry", pos())
			}
			if reasonCall(f.Name.Name, call, "E") {
				for _, a := range call.Args {
					if v, ok := stringLit(a); ok && twoLanguages.MatchString(v) {
						t.Errorf("%s: words in two languages in a refusal: %q", pos(), v)
					}
				}
			}
			return true
		})
	}
	for _, p := range []string{"internal/console/console.go", "internal/console/passkey.go", "internal/console/backoffice.go", "internal/server/backoffice_api.go"} {
		if !checked[p] {
			t.Errorf("%s not scanned", p)
		}
	}
	for _, tt := range []struct {
		s    string
		want bool
	}{
		{"the form expired; reload the page · フォームの有効期限が切れました", true},
		{"登録コードは無効になりました。 / That enrolment code is no longer valid", true},
		{"Lifting a halt needs four eyes · 二名の承認が必要です。", true},
		{"Field decision: want approve or reject", false},
		{"decision は approve か reject で指定してください", false},
	} {
		if got := twoLanguages.MatchString(tt.s); got != tt.want {
			t.Errorf("twoLanguages(%q) = %v", tt.s, got)
		}
	}
}
