package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestLiveResponsesMatchOpenAPI drives a real demo with calls that
// succeed and calls that fail, and checks every answer against the
// OpenAPI document the server serves: the operation exists, the status is
// documented, and the JSON body validates against its schema. Error and
// success bodies are compact alike.
func TestLiveResponsesMatchOpenAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a demo")
	}
	base := startDemo(t, "--customers", "200")
	resp, err := http.Get(base + "/api/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	v := &oaValidator{doc: doc}
	now := time.Now().Format(time.RFC3339)
	login := fmt.Sprintf(`{"id":"oa-login","type":"login","time":%q,"account":"C0000001","session":"s-oa","ip":"192.0.2.70","asn":2516,"country":"JP","device":"d-oa","ua":"curl","channel":"api","method":"passkey","factors":["passkey"],"ok":true}`, now)
	bar := fmt.Sprintf(`{"id":"oa-bar","type":"bar","time":%q,"symbol":"7203","open":1,"high":2,"low":1,"close":2,"volume":5}`, now)
	order := `{"symbol":"7203","side":"buy","qty":100,"price_type":"market","kind":"cash"}`
	calls := []struct {
		method, path, key, body, ctype string
		status                         int
	}{
		{"GET", "/healthz", "", "", "", 200},
		{"GET", "/readyz", "", "", "", 200},
		{"POST", "/healthz", "", "", "", 405},
		{"GET", "/api/v1/accounts?limit=3", DemoKey, "", "", 200},
		{"GET", "/api/v1/accounts?limit=0", DemoKey, "", "", 400},
		{"GET", "/api/v1/accounts", "", "", "", 401},
		{"GET", "/api/v1/accounts", "kb_not_a_key_at_all", "", "", 401},
		{"GET", "/api/v1/accounts/C0000001", DemoKey, "", "", 200},
		{"GET", "/api/v1/accounts/C9999999", DemoKey, "", "", 404},
		{"GET", "/api/v1/accounts/C0000001/orders", DemoKey, "", "", 200},
		{"POST", "/api/v1/accounts/C0000001/orders", DemoKey, order, "application/json", 0},
		{"POST", "/api/v1/accounts/C0000001/orders", DemoKey, `{"symbol":"7203","qty":"many"}`, "application/json", 400},
		{"GET", "/api/v1/instruments?q=7203", DemoKey, "", "", 200},
		{"GET", "/api/v1/halts", DemoKey, "", "", 200},
		{"POST", "/api/v1/events", DemoKey, login, "application/json", 200},
		{"POST", "/api/v1/events", DemoKey, "[" + bar + "]", "application/json", 200},
		{"POST", "/api/v1/events", DemoKey, `[` + bar + `,{"id":"x","type":"order","time":"2025-04-08T09:00:00+09:00","account":"C1","qty":"many"}]`, "application/json", 400},
		{"POST", "/api/v1/events", DemoKey, `{"id":"u1","type":"weather","time":"2025-04-08T09:00:00+09:00"}`, "application/json", 200},
		{"POST", "/api/v1/events", DemoKey, "", "application/json", 400},
		{"GET", "/api/v1/decisions?limit=5", DemoKey, "", "", 200},
		{"GET", "/api/v1/decisions/oa-login", DemoKey, "", "", 0}, // stored by the decision log's writer, soon
		{"GET", "/api/v1/decisions/nope", DemoKey, "", "", 404},
		{"GET", "/api/v1/alerts", DemoKey, "", "", 200},
		{"GET", "/api/v1/lists", DemoKey, "", "", 200},
	}
	for _, c := range calls {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, base+c.path, strings.NewReader(c.body))
			if c.key != "" {
				req.Header.Set("Authorization", "Bearer "+c.key)
			}
			if c.ctype != "" {
				req.Header.Set("Content-Type", c.ctype)
			}
			if c.method == "POST" && strings.Contains(c.path, "/accounts/") {
				req.Header.Set("Idempotency-Key", "oa-"+strconv.Itoa(len(c.body)))
				for k, v := range customer {
					req.Header.Set(k, v)
				}
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if c.status != 0 && resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, body)
			}
			if err := v.response(c.method, strings.SplitN(c.path, "?", 2)[0], resp.StatusCode, resp.Header.Get("Content-Type"), body); err != nil {
				t.Errorf("%d %s\n%s", resp.StatusCode, body, err)
			}
			if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
				var compact bytes.Buffer
				if err := json.Compact(&compact, body); err != nil || compact.String() != strings.TrimSpace(string(body)) {
					t.Errorf("body is not compact JSON: %q", body)
				}
			}
		})
	}
}

// oaValidator checks answers against an OpenAPI 3.1 document: the subset
// of JSON Schema the document uses ($ref, type, properties, required,
// items, enum, const, oneOf with discriminator, anyOf, allOf,
// additionalProperties, bounds, lengths, pattern).
type oaValidator struct{ doc map[string]any }

func (v *oaValidator) response(method, path string, status int, ctype string, body []byte) error {
	paths := v.doc["paths"].(map[string]any)
	var op map[string]any
	for tmpl, ops := range paths {
		if oaMatch(tmpl, path) {
			op, _ = ops.(map[string]any)[strings.ToLower(method)].(map[string]any)
			if op != nil {
				break
			}
		}
	}
	if op == nil {
		if status == http.StatusMethodNotAllowed {
			for tmpl, ops := range paths {
				if oaMatch(tmpl, path) {
					for _, o := range ops.(map[string]any) {
						op = o.(map[string]any)
					}
				}
			}
		}
		if op == nil {
			return fmt.Errorf("%s %s is not in the document", method, path)
		}
	}
	rs := op["responses"].(map[string]any)
	r, ok := rs[strconv.Itoa(status)]
	if !ok {
		r, ok = rs[fmt.Sprintf("%dXX", status/100)]
	}
	if !ok {
		r, ok = rs["default"]
	}
	if !ok {
		return fmt.Errorf("status %d is not documented for %s %s", status, method, path)
	}
	rm := v.deref(r.(map[string]any))
	content, _ := rm["content"].(map[string]any)
	if len(content) == 0 {
		return nil
	}
	mt, _, _ := strings.Cut(ctype, ";")
	media, ok := content[strings.TrimSpace(mt)].(map[string]any)
	if !ok {
		return fmt.Errorf("content type %q is not documented for %d (want one of %v)", ctype, status, keys(content))
	}
	if !strings.HasSuffix(mt, "json") {
		return nil
	}
	var val any
	if err := json.Unmarshal(body, &val); err != nil {
		return fmt.Errorf("body is not JSON: %v", err)
	}
	return v.check(media["schema"], val, "$")
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func oaMatch(tmpl, path string) bool {
	a, b := strings.Split(tmpl, "/"), strings.Split(path, "/")
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !(strings.HasPrefix(a[i], "{") && b[i] != "") && a[i] != b[i] {
			return false
		}
	}
	return true
}

func (v *oaValidator) deref(m map[string]any) map[string]any {
	for {
		ref, ok := m["$ref"].(string)
		if !ok {
			return m
		}
		var cur any = v.doc
		for _, p := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			cur = cur.(map[string]any)[p]
		}
		m = cur.(map[string]any)
	}
}

func (v *oaValidator) check(schema, val any, at string) error {
	s, ok := schema.(map[string]any)
	if !ok {
		if b, ok := schema.(bool); ok && !b {
			return fmt.Errorf("%s: not allowed", at)
		}
		return nil
	}
	s = v.deref(s)
	if t, ok := s["type"]; ok {
		var ts []string
		switch t := t.(type) {
		case string:
			ts = []string{t}
		case []any:
			for _, x := range t {
				ts = append(ts, x.(string))
			}
		}
		okType := false
		for _, t := range ts {
			okType = okType || oaIsType(t, val)
		}
		if !okType {
			return fmt.Errorf("%s: %v is not of type %v", at, val, ts)
		}
	}
	if c, ok := s["const"]; ok && fmt.Sprint(c) != fmt.Sprint(val) {
		return fmt.Errorf("%s: %v, want %v", at, val, c)
	}
	if e, ok := s["enum"].([]any); ok {
		found := false
		for _, x := range e {
			found = found || fmt.Sprint(x) == fmt.Sprint(val)
		}
		if !found {
			return fmt.Errorf("%s: %v is not one of %v", at, val, e)
		}
	}
	if n, ok := val.(float64); ok {
		if m, ok := s["minimum"].(float64); ok && n < m {
			return fmt.Errorf("%s: %v < minimum %v", at, n, m)
		}
		if m, ok := s["maximum"].(float64); ok && n > m {
			return fmt.Errorf("%s: %v > maximum %v", at, n, m)
		}
		if m, ok := s["exclusiveMinimum"].(float64); ok && n <= m {
			return fmt.Errorf("%s: %v <= exclusive minimum %v", at, n, m)
		}
	}
	if str, ok := val.(string); ok {
		if m, ok := s["minLength"].(float64); ok && float64(len([]rune(str))) < m {
			return fmt.Errorf("%s: %q shorter than %v", at, str, m)
		}
		if m, ok := s["maxLength"].(float64); ok && float64(len([]rune(str))) > m {
			return fmt.Errorf("%s: %q longer than %v", at, str, m)
		}
		if p, ok := s["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(str) {
			return fmt.Errorf("%s: %q does not match %s", at, str, p)
		}
	}
	for _, sub := range oaList(s["allOf"]) {
		if err := v.check(sub, val, at); err != nil {
			return err
		}
	}
	if any := oaList(s["anyOf"]); len(any) > 0 {
		var errs []string
		for _, sub := range any {
			err := v.check(sub, val, at)
			if err == nil {
				errs = nil
				break
			}
			errs = append(errs, err.Error())
		}
		if errs != nil {
			return fmt.Errorf("%s: matches none of anyOf: %s", at, strings.Join(errs, "; "))
		}
	}
	if one := oaList(s["oneOf"]); len(one) > 0 {
		if d, ok := s["discriminator"].(map[string]any); ok {
			obj, _ := val.(map[string]any)
			tag, _ := obj[d["propertyName"].(string)].(string)
			ref, ok := d["mapping"].(map[string]any)[tag].(string)
			if !ok {
				return fmt.Errorf("%s: %s %q is not in the discriminator's mapping", at, d["propertyName"], tag)
			}
			return v.check(map[string]any{"$ref": ref}, val, at)
		}
		n := 0
		var errs []string
		for _, sub := range one {
			if err := v.check(sub, val, at); err == nil {
				n++
			} else {
				errs = append(errs, err.Error())
			}
		}
		if n != 1 {
			return fmt.Errorf("%s: matches %d of oneOf, want 1 (%s)", at, n, strings.Join(errs, "; "))
		}
	}
	if obj, ok := val.(map[string]any); ok {
		props, _ := s["properties"].(map[string]any)
		for _, r := range oaList(s["required"]) {
			if _, ok := obj[r.(string)]; !ok {
				return fmt.Errorf("%s: required %q missing", at, r)
			}
		}
		for k, x := range obj {
			if ps, ok := props[k]; ok {
				if err := v.check(ps, x, at+"."+k); err != nil {
					return err
				}
			} else if ap, ok := s["additionalProperties"]; ok {
				if err := v.check(ap, x, at+"."+k); err != nil {
					return err
				}
			}
		}
	}
	if arr, ok := val.([]any); ok {
		if m, ok := s["maxItems"].(float64); ok && float64(len(arr)) > m {
			return fmt.Errorf("%s: more than %v items", at, m)
		}
		for i, x := range arr {
			if err := v.check(s["items"], x, fmt.Sprintf("%s[%d]", at, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

func oaList(x any) []any { l, _ := x.([]any); return l }

func oaIsType(t string, val any) bool {
	switch t {
	case "object":
		_, ok := val.(map[string]any)
		return ok
	case "array":
		_, ok := val.([]any)
		return ok
	case "string":
		_, ok := val.(string)
		return ok
	case "boolean":
		_, ok := val.(bool)
		return ok
	case "null":
		return val == nil
	case "number":
		_, ok := val.(float64)
		return ok
	case "integer":
		n, ok := val.(float64)
		return ok && n == math.Trunc(n)
	}
	return false
}

// TestOAValidator: the validator above refuses what does not match, so
// TestLiveResponsesMatchOpenAPI can fail.
func TestOAValidator(t *testing.T) {
	var doc map[string]any
	json.Unmarshal([]byte(`{"paths":{"/r/{id}":{"get":{"responses":{"200":{"description":"x","content":{"application/json":{"schema":{"$ref":"#/components/schemas/R"}}}}}}}},
	"components":{"schemas":{"R":{"oneOf":[{"$ref":"#/components/schemas/A"},{"$ref":"#/components/schemas/B"}],"discriminator":{"propertyName":"type","mapping":{"a":"#/components/schemas/A","b":"#/components/schemas/B"}}},
	"A":{"type":"object","required":["type","n"],"properties":{"type":{"const":"a"},"n":{"type":"integer","minimum":1}}},
	"B":{"type":"object","required":["type","s"],"properties":{"type":{"const":"b"},"s":{"enum":["x","y"]}}}}}}`), &doc)
	v := &oaValidator{doc: doc}
	for _, tt := range []struct {
		method, path string
		status       int
		ctype, body  string
		ok           bool
	}{
		{"GET", "/r/1", 200, "application/json", `{"type":"a","n":2}`, true},
		{"GET", "/r/1", 200, "application/json", `{"type":"b","s":"y"}`, true},
		{"GET", "/r/1", 200, "application/json", `{"type":"a","n":0}`, false},
		{"GET", "/r/1", 200, "application/json", `{"type":"a","n":1.5}`, false},
		{"GET", "/r/1", 200, "application/json", `{"type":"a"}`, false},
		{"GET", "/r/1", 200, "application/json", `{"type":"b","s":"z"}`, false},
		{"GET", "/r/1", 200, "application/json", `{"type":"c"}`, false},
		{"GET", "/r/1", 404, "application/json", `{}`, false},
		{"GET", "/r/1", 200, "text/plain", `x`, false},
		{"POST", "/r/1", 200, "application/json", `{}`, false},
		{"GET", "/q", 200, "application/json", `{}`, false},
	} {
		err := v.response(tt.method, tt.path, tt.status, tt.ctype, []byte(tt.body))
		if (err == nil) != tt.ok {
			t.Errorf("%s %s %d %s: err = %v, want ok %v", tt.method, tt.path, tt.status, tt.body, err, tt.ok)
		}
	}
}
