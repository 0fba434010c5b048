package cli

import (
	"context"
	"flag"
	"fmt"
	"os/user"
	"text/tabwriter"

	"github.com/kabuto-sec/kabuto/internal/analyst"
	"github.com/kabuto-sec/kabuto/internal/apikey"
	"github.com/kabuto-sec/kabuto/internal/console"
)

// operator names who runs a command at the terminal, for the audit trail.
func operator() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "operator:" + u.Username
	}
	return "operator:unknown"
}

func runAnalyst(ctx context.Context, env *Env, args []string) error {
	fs := flag.NewFlagSet("analyst", flag.ContinueOnError)
	var c common
	c.register(fs, "./data")
	create := fs.String("create", "", "create an analyst account with this name")
	role := fs.String("role", "", "role of a new analyst: analyst (triage, notes, proposals), supervisor (approvals) or admin (people, keys, policy)")
	disable := fs.String("disable", "", "disable the analyst with this name (the history stays)")
	list := fs.Bool("list", false, "list the analysts")
	enrol := fs.String("enrol", "", "print a new one-time console enrolment code for the analyst with this name (another passkey, or a lost one)")
	if err := parse(fs, env, args, "Create, disable and list the back office's analysts. Each change is audited with the operator who made it."); err != nil {
		return err
	}
	n := 0
	for _, set := range []bool{*create != "", *disable != "", *list, *enrol != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		return usageError{fmt.Errorf("give one of --create NAME --role ROLE, --enrol NAME, --disable NAME or --list")}
	}
	if *create != "" && !analyst.ValidRole(*role) {
		return usageError{fmt.Errorf("--role %q: want analyst, supervisor or admin", *role)}
	}
	if *create == "" && *role != "" {
		return usageError{fmt.Errorf("--role goes with --create")}
	}
	if _, err := c.logger(env); err != nil {
		return err
	}
	db, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	people := analyst.New(db, nil)
	switch {
	case *create != "":
		a, err := people.Create(ctx, *create, *role, operator())
		if err != nil {
			return err
		}
		// The analyst's personal key: the API's four-eyes calls know the
		// person by it.
		secret, k, err := apikey.New(db).Create(ctx, a.Actor(), []string{apikey.ScopeAdmin}, env.Now())
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "created analyst %s (%s)\nkey id: %s\nsecret: %s\n(the personal key of %s, shown only now: it names them in the back office's four-eyes calls)\n",
			a.Name, a.Role, k.ID, secret, a.Name)
		code, err := console.IssueEnrolment(ctx, db, a.Name, operator(), env.Now())
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "enrolment code: %s\n(one use, %s: %s opens /console/enrol, enters it and registers a passkey)\n", code, console.EnrolmentTTL, a.Name)
	case *enrol != "":
		code, err := console.IssueEnrolment(ctx, db, *enrol, operator(), env.Now())
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "enrolment code: %s\n(one use, %s: %s opens /console/enrol, enters it and registers a passkey)\n", code, console.EnrolmentTTL, *enrol)
	case *disable != "":
		if err := people.Disable(ctx, *disable, operator()); err != nil {
			return err
		}
		if _, err := apikey.New(db).RevokeNamed(ctx, "analyst:"+*disable, env.Now()); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "disabled analyst %s\n", *disable)
	default:
		as, err := people.List(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tROLE\tCREATED (JST)\tBY\tSTATE")
		for _, a := range as {
			state := "active"
			if !a.Active() {
				state = "disabled " + a.Disabled.Format("2006-01-02 15:04")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.Name, a.Role, a.Created.Format("2006-01-02 15:04"), a.CreatedBy, state)
		}
		tw.Flush()
	}
	return nil
}
