package server

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestOpenAPILintRules holds the served document to the rules of
// `npx @redocly/cli lint` that a new route most easily breaks, so CI
// catches them without Node: servers and a licence; on every operation a
// unique operationId, security given (an empty list for public routes)
// and a 4XX response; every record type of the event spec a schema of
// POST /api/v1/events's body.
func TestOpenAPILintRules(t *testing.T) {
	var doc struct {
		Servers []map[string]any `json:"servers"`
		Info    struct {
			License map[string]any `json:"license"`
		} `json:"info"`
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas map[string]struct {
				Discriminator struct {
					PropertyName string            `json:"propertyName"`
					Mapping      map[string]string `json:"mapping"`
				} `json:"discriminator"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Servers) == 0 {
		t.Error("no servers")
	}
	if doc.Info.License["name"] == nil || (doc.Info.License["identifier"] == nil && doc.Info.License["url"] == nil) {
		t.Error("no licence with an identifier or url")
	}
	ids := map[string]string{}
	for path, ops := range doc.Paths {
		for method, raw := range ops {
			var op struct {
				OperationID string                     `json:"operationId"`
				Security    *[]map[string][]string     `json:"security"`
				Responses   map[string]json.RawMessage `json:"responses"`
			}
			if err := json.Unmarshal(raw, &op); err != nil {
				continue // a path-level field such as parameters
			}
			where := strings.ToUpper(method) + " " + path
			if op.OperationID == "" {
				t.Errorf("%s: no operationId", where)
			} else if prev, dup := ids[op.OperationID]; dup {
				t.Errorf("%s: operationId %s also names %s", where, op.OperationID, prev)
			}
			ids[op.OperationID] = where
			if op.Security == nil {
				t.Errorf("%s: no security (give [] for a public route)", where)
			}
			has4xx := false
			for code := range op.Responses {
				has4xx = has4xx || strings.HasPrefix(code, "4")
			}
			if !has4xx {
				t.Errorf("%s: no 4XX response", where)
			}
		}
	}
	rec := doc.Components.Schemas["Record"].Discriminator
	if rec.PropertyName != "type" {
		t.Fatalf("Record has no discriminator on type: %+v", rec)
	}
	for _, typ := range []string{"instrument", "account", "bar", "fill", "login", "order", "withdrawal", "bank_change", "contact_change", "factor_add", "factor_remove", "password_change"} {
		if rec.Mapping[typ] == "" {
			t.Errorf("record type %s has no schema", typ)
		}
	}
}
