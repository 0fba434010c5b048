package analyst

import (
	"context"
	"testing"

	"github.com/kabuto-sec/kabuto/internal/audit"
	"github.com/kabuto-sec/kabuto/internal/reason"
	"github.com/kabuto-sec/kabuto/internal/store"
	"github.com/kabuto-sec/kabuto/internal/store/storetest"
)

func code(err error) string {
	if e := reason.As(err); e != nil {
		return e.Code
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

func TestAnalystsAndFourEyes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := New(db, nil)
		for _, c := range []struct{ name, role string }{{"sato", RoleAnalyst}, {"suzuki", RoleSupervisor}, {"tanaka", RoleSupervisor}, {"ito", RoleAdmin}} {
			if _, err := s.Create(ctx, c.name, c.role, "operator:root"); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.Create(ctx, "sato", RoleAdmin, "operator:root"); err == nil {
			t.Error("a second sato was created")
		}
		for _, bad := range []struct{ name, role string }{{"", RoleAnalyst}, {"Sato", RoleAnalyst}, {"x y", RoleAnalyst}, {"kato", "root"}} {
			if _, err := s.Create(ctx, bad.name, bad.role, "operator:root"); code(err) != reason.InvalidField {
				t.Errorf("Create(%q, %q) = %v, want invalid_field", bad.name, bad.role, err)
			}
		}
		if err := s.Disable(ctx, "tanaka", "analyst:ito"); err != nil {
			t.Fatal(err)
		}
		if err := s.Disable(ctx, "tanaka", "analyst:ito"); code(err) != ReasonUnknownAnalyst {
			t.Errorf("disabling twice: %v", err)
		}
		cases := []struct {
			proposer, approver, want string
		}{
			{"sato", "suzuki", ""},
			{"suzuki", "suzuki", ReasonFourEyes},     // own proposal
			{"sato", "sato", ReasonFourEyes},         // own proposal, no role either
			{"suzuki", "sato", ReasonFourEyes},       // an analyst cannot approve
			{"sato", "ito", ReasonFourEyes},          // admin manages people, does not approve
			{"sato", "tanaka", ReasonUnknownAnalyst}, // disabled
			{"sato", "nobody", ReasonUnknownAnalyst},
		}
		for _, c := range cases {
			_, err := CheckFourEyes(ctx, db, c.proposer, c.approver)
			if code(err) != c.want {
				t.Errorf("CheckFourEyes(%s, %s) = %v, want %q", c.proposer, c.approver, err, c.want)
			}
		}
		as, err := s.List(ctx)
		if err != nil || len(as) != 4 || as[3].Name != "tanaka" || as[3].Active() {
			t.Fatalf("List = %+v, %v", as, err)
		}
		es, err := audit.New(db).List(ctx, "analyst:tanaka", 10)
		if err != nil || len(es) != 2 || es[0].Action != "analyst_disabled" || es[0].Actor != "analyst:ito" {
			t.Errorf("audit of tanaka = %+v, %v", es, err)
		}
	})
}
