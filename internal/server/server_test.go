package server

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestOpenAPIMatchesRoutes checks that the served OpenAPI document and the
// registered routes describe the same API, both ways.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	s := New(Config{})
	registered := map[string]bool{}
	for _, rt := range s.routes {
		registered[rt.method+" "+rt.path] = true
	}
	for _, p := range []string{"GET /healthz", "GET /readyz", "GET /metrics", "GET /api/v1/openapi.json"} {
		registered[p] = true
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for m := range ops {
			documented[strings.ToUpper(m)+" "+path] = true
		}
	}
	for r := range registered {
		if !documented[r] {
			t.Errorf("route %s is not in openapi.json", r)
		}
		// the mux really has it
		method, path, _ := strings.Cut(r, " ")
		if _, pat := s.api.Handler(mustReq(method, strings.NewReplacer("{account}", "A1", "{order}", "O1", "{symbol}", "7203", "{event}", "E1").Replace(path))); pat != r {
			t.Errorf("route %s: mux matched %q", r, pat)
		}
	}
	for r := range documented {
		if !registered[r] {
			t.Errorf("openapi.json documents %s, which is not registered", r)
		}
	}
}
