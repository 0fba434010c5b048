package risk

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/cost"
	"github.com/kabuto-sec/kabuto/internal/event"
	yaml "go.yaml.in/yaml/v3"
)

// Action is what a rule does when it fires instead of adding a weight.
type Action string

// Direct actions, least severe first.
const (
	ActionAllow                      Action = "allow" // overrides the score: the score's outcome becomes allow
	ActionChallengeMFA               Action = "challenge:mfa"
	ActionChallengePhishingResistant Action = "challenge:phishing_resistant"
	ActionHold                       Action = "hold"
	ActionDeny                       Action = "deny"
)

// severity orders outcomes: allow < challenge mfa < challenge
// phishing_resistant < hold < deny.
func (a Action) severity() int {
	switch a {
	case ActionChallengeMFA:
		return 1
	case ActionChallengePhishingResistant:
		return 2
	case ActionHold:
		return 3
	case ActionDeny:
		return 4
	}
	return 0
}

var bySeverity = [...]Action{ActionAllow, ActionChallengeMFA, ActionChallengePhishingResistant, ActionHold, ActionDeny}

// split returns the decision action and challenge factor of a.
func (a Action) split() (string, string) {
	switch a {
	case ActionChallengeMFA:
		return event.Challenge, event.FactorMFA
	case ActionChallengePhishingResistant:
		return event.Challenge, event.FactorPhishingResistant
	case ActionHold:
		return event.Hold, ""
	case ActionDeny:
		return event.Deny, ""
	}
	return event.Allow, ""
}

// Thresholds map a total score (0..100) to an outcome: a score at or above
// Deny is denied, at or above Hold held, at or above ChallengePhishingResistant
// challenged for a passkey, at or above Challenge challenged for any second
// factor; below Challenge allowed. A threshold of 101 switches its band off.
type Thresholds struct {
	Challenge                  int `json:"challenge"`
	ChallengePhishingResistant int `json:"challenge_phishing_resistant"`
	Hold                       int `json:"hold"`
	Deny                       int `json:"deny"`
}

func (t Thresholds) action(score int) Action {
	switch {
	case score >= t.Deny:
		return ActionDeny
	case score >= t.Hold:
		return ActionHold
	case score >= t.ChallengePhishingResistant:
		return ActionChallengePhishingResistant
	case score >= t.Challenge:
		return ActionChallengeMFA
	}
	return ActionAllow
}

func (t Thresholds) floor(a Action) int {
	switch a {
	case ActionChallengeMFA:
		return t.Challenge
	case ActionChallengePhishingResistant:
		return t.ChallengePhishingResistant
	case ActionHold:
		return t.Hold
	case ActionDeny:
		return t.Deny
	}
	return 0
}

// Rule is one compiled policy rule.
type Rule struct {
	ID          string
	Description string
	Applies     []event.Type // action types the rule is evaluated for
	When        string       // CEL expression over the variables; must be bool
	Weight      int          // added to the score when it fires (when Action is empty)
	Action      Action       // direct action when it fires (when set)
	Reason      string       // stable snake_case reason code
	Line        int          // line of the rule in its policy file

	prg  cel.Program
	vars []int // indices of the variables When reads
}

// Policy is a compiled, versioned set of rules and thresholds. A Policy is
// immutable once loaded and safe for concurrent use.
type Policy struct {
	Name        string // file name or label it was loaded from
	Version     string // goes into decision.policy
	Description string
	Thresholds  Thresholds
	// PhishingResistant lists action types whose challenges must ask for
	// phishing_resistant when the session's (or login's) factors include
	// no passkey.
	PhishingResistant []event.Type
	// PhishingResistantNewContext lists action types whose challenges
	// must ask for phishing_resistant in a session in a new context
	// (session.new_context): a code can be relayed by whoever phished the
	// sign-in, so it proves nothing there.
	PhishingResistantNewContext []event.Type
	Rules                       []*Rule

	byType   [numActionTypes][]*Rule
	varsType [numActionTypes][]int // variables read by the rules of each type
	prType   [numActionTypes]bool
	prNC     [numActionTypes]bool
	src      []byte
}

// Source returns the text the policy was loaded from.
func (p *Policy) Source() []byte { return slices.Clone(p.src) }

// action types, indexed
const numActionTypes = 8

var actionTypes = [numActionTypes]event.Type{event.TypeLogin, event.TypeOrder, event.TypeWithdrawal,
	event.TypeBankChange, event.TypeContactChange, event.TypeFactorAdd, event.TypeFactorRemove, event.TypePasswordChange}

func typeIndex(t event.Type) int {
	switch t {
	case event.TypeLogin:
		return 0
	case event.TypeOrder:
		return 1
	case event.TypeWithdrawal:
		return 2
	case event.TypeBankChange:
		return 3
	case event.TypeContactChange:
		return 4
	case event.TypeFactorAdd:
		return 5
	case event.TypeFactorRemove:
		return 6
	case event.TypePasswordChange:
		return 7
	}
	return -1
}

// PolicyError is a policy loading error naming the file, line, rule and field.
type PolicyError struct {
	Policy string
	Line   int
	Rule   string
	Field  string
	Msg    string
}

// PolicyErrors is every error found in a policy, in the order of the
// file: LoadPolicy reports them all at once when there is more than one.
type PolicyErrors []*PolicyError

func (e PolicyErrors) Error() string {
	s := make([]string, len(e))
	for i, pe := range e {
		s[i] = pe.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap returns the errors, for errors.As.
func (e PolicyErrors) Unwrap() []error {
	out := make([]error, len(e))
	for i, pe := range e {
		out[i] = pe
	}
	return out
}

// maxPolicyErrors bounds the errors one check reports.
const maxPolicyErrors = 50

func (e *PolicyError) Error() string {
	var b strings.Builder
	if e.Policy != "" {
		b.WriteString(e.Policy)
		b.WriteString(": ")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Rule != "" {
		fmt.Fprintf(&b, "rule %s: ", e.Rule)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, "field %s: ", e.Field)
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Limits on policy files.
const (
	maxPolicyBytes = 1 << 20
	maxRules       = 1000
	maxExprLen     = 4096
	maxExprCost    = 100000
)

var (
	idRe     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	reasonRe = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
)

var celEnv = sync.OnceValues(func() (*cel.Env, error) {
	opts := []cel.EnvOption{
		cel.ParserRecursionLimit(64),
		cel.ParserExpressionSizeLimit(maxExprLen),
	}
	for _, v := range variables {
		opts = append(opts, cel.Variable(v.Name, celType(v.Type)))
	}
	return cel.NewEnv(opts...)
})

// LoadPolicyFile reads and compiles the policy file at path.
func LoadPolicyFile(path string) (*Policy, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return LoadPolicy(path, src)
}

// LoadPolicy parses, validates and compiles a YAML policy. name labels it
// in errors. Its error is a *PolicyError naming the line and, where there
// is one, the rule and the field, or PolicyErrors when the policy has
// more than one: each top-level field and each rule is checked on its
// own, so one check reports them all. LoadPolicy never panics.
func LoadPolicy(name string, src []byte) (p *Policy, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, &PolicyError{Policy: name, Msg: fmt.Sprintf("internal error while loading: %v", r)}
		}
	}()
	return loadPolicy(name, src)
}

// loadPolicy is LoadPolicy without the recover, so fuzzing sees panics.
func loadPolicy(name string, src []byte) (*Policy, error) {
	l := loader{name: name}
	p := l.load(src)
	l.flush()
	switch len(l.errs) {
	case 0:
		return p, nil
	case 1:
		return nil, l.errs[0]
	}
	slices.SortStableFunc(l.errs, func(a, b *PolicyError) int { return a.Line - b.Line })
	return nil, l.errs
}

// loader checks a policy. err is the first error of the part being
// checked (a top-level field, a rule's field); flush moves it to errs
// and lets the next part be checked.
type loader struct {
	name string
	rule string
	err  *PolicyError
	errs PolicyErrors
}

func (l *loader) flush() {
	if l.err != nil && len(l.errs) < maxPolicyErrors {
		l.errs = append(l.errs, l.err)
	}
	l.err = nil
}

func (l *loader) fail(n *yaml.Node, field, format string, args ...any) {
	if l.err != nil {
		return
	}
	line := 0
	if n != nil {
		line = n.Line
	}
	l.err = &PolicyError{Policy: l.name, Line: line, Rule: l.rule, Field: field, Msg: fmt.Sprintf(format, args...)}
}

func (l *loader) load(src []byte) *Policy {
	if len(src) > maxPolicyBytes {
		l.fail(nil, "", "policy larger than %d bytes", maxPolicyBytes)
		return nil
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		msg := err.Error()
		line := 0
		if m := regexp.MustCompile(`line (\d+)`).FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
		}
		l.err = &PolicyError{Policy: l.name, Line: line, Msg: "malformed YAML: " + strings.TrimPrefix(msg, "yaml: ")}
		return nil
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		l.fail(&doc, "", "want a YAML mapping with version, thresholds and rules")
		return nil
	}
	p := &Policy{Name: l.name, src: slices.Clone(src)}
	top := doc.Content[0]
	var rulesNode *yaml.Node
	seen := map[string]bool{}
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		if seen[k.Value] {
			l.fail(k, k.Value, "given twice")
			return nil
		}
		seen[k.Value] = true
		switch k.Value {
		case "version":
			p.Version = l.str(v, "version")
		case "description":
			p.Description = l.str(v, "description")
		case "thresholds":
			p.Thresholds = l.thresholds(v)
		case "phishing_resistant_actions":
			p.PhishingResistant = l.types(v, "phishing_resistant_actions", false)
		case "phishing_resistant_new_context":
			p.PhishingResistantNewContext = l.types(v, "phishing_resistant_new_context", false)
		case "rules":
			rulesNode = v
		default:
			l.fail(k, k.Value, "unknown field (want version, description, thresholds, phishing_resistant_actions, phishing_resistant_new_context, rules)")
		}
		l.flush()
	}
	if strings.TrimSpace(p.Version) == "" && !seen["version"] {
		l.fail(top, "version", "missing: a policy needs a version string")
	} else if strings.TrimSpace(p.Version) == "" {
		l.fail(top, "version", "empty: a policy needs a version string")
	}
	l.flush()
	if !seen["thresholds"] {
		l.fail(top, "thresholds", "missing: give challenge, challenge_phishing_resistant, hold and deny")
		l.flush()
	}
	if rulesNode == nil || rulesNode.Kind != yaml.SequenceNode {
		l.fail(orNode(rulesNode, top), "rules", "want a list of rules")
		return nil
	}
	if len(rulesNode.Content) > maxRules {
		l.fail(rulesNode, "rules", "more than %d rules", maxRules)
		return nil
	}
	ids := map[string]int{}
	for _, rn := range rulesNode.Content {
		r := l.ruleNode(rn)
		l.flush()
		l.rule = ""
		if id := ruleID(rn); id != "" {
			if prev, dup := ids[id]; dup {
				l.rule = id
				l.fail(rn, "id", "duplicate rule id (first on line %d)", prev)
				l.flush()
				l.rule = ""
				continue
			}
			ids[id] = rn.Line
		}
		if r != nil {
			p.Rules = append(p.Rules, r)
		}
	}
	if len(l.errs) > 0 {
		return nil
	}
	p.index()
	return p
}

// ruleID is the id a rule's mapping gives, if any.
func ruleID(n *yaml.Node) string {
	for i := 0; n.Kind == yaml.MappingNode && i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "id" && n.Content[i+1].Kind == yaml.ScalarNode {
			return n.Content[i+1].Value
		}
	}
	return ""
}

func orNode(n, def *yaml.Node) *yaml.Node {
	if n != nil {
		return n
	}
	return def
}

func (p *Policy) index() {
	for _, t := range p.PhishingResistant {
		p.prType[typeIndex(t)] = true
	}
	for _, t := range p.PhishingResistantNewContext {
		p.prNC[typeIndex(t)] = true
	}
	for ti, t := range actionTypes {
		seen := map[int]bool{}
		for _, r := range p.Rules {
			if !slices.Contains(r.Applies, t) {
				continue
			}
			p.byType[ti] = append(p.byType[ti], r)
			for _, v := range r.vars {
				if !seen[v] {
					seen[v] = true
					p.varsType[ti] = append(p.varsType[ti], v)
				}
			}
		}
		slices.Sort(p.varsType[ti])
	}
}

func (l *loader) str(n *yaml.Node, field string) string {
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!str" && n.Tag != "!!int" && n.Tag != "!!float") {
		l.fail(n, field, "want a string")
		return ""
	}
	return n.Value
}

func (l *loader) int(n *yaml.Node, field string, lo, hi int) int {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		l.fail(n, field, "want an integer")
		return 0
	}
	v, err := strconv.Atoi(n.Value)
	if err != nil || v < lo || v > hi {
		l.fail(n, field, "want an integer from %d to %d, got %s", lo, hi, n.Value)
		return 0
	}
	return v
}

func (l *loader) thresholds(n *yaml.Node) Thresholds {
	t := Thresholds{Challenge: 101, ChallengePhishingResistant: 101, Hold: 101, Deny: 101}
	if n.Kind != yaml.MappingNode {
		l.fail(n, "thresholds", "want a mapping of challenge, challenge_phishing_resistant, hold, deny")
		return t
	}
	ok := true
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		f := "thresholds." + k.Value
		if seen[k.Value] {
			l.fail(k, f, "given twice")
		}
		seen[k.Value] = true
		switch k.Value {
		case "challenge":
			t.Challenge = l.int(v, f, 1, 101)
		case "challenge_phishing_resistant":
			t.ChallengePhishingResistant = l.int(v, f, 1, 101)
		case "hold":
			t.Hold = l.int(v, f, 1, 101)
		case "deny":
			t.Deny = l.int(v, f, 1, 101)
		default:
			l.fail(k, f, "unknown threshold (want challenge, challenge_phishing_resistant, hold, deny)")
		}
		if l.err != nil {
			ok = false
		}
		l.flush()
	}
	for _, f := range []string{"challenge", "challenge_phishing_resistant", "hold", "deny"} {
		if !seen[f] {
			l.fail(n, "thresholds."+f, "missing: give a score from 1 to 101 (101: never)")
			l.flush()
			ok = false
		}
	}
	if ok && !(t.Challenge <= t.ChallengePhishingResistant && t.ChallengePhishingResistant <= t.Hold && t.Hold <= t.Deny) {
		l.fail(n, "thresholds", "want challenge <= challenge_phishing_resistant <= hold <= deny, got %d, %d, %d, %d", t.Challenge, t.ChallengePhishingResistant, t.Hold, t.Deny)
	}
	return t
}

func (l *loader) types(n *yaml.Node, field string, allowAll bool) []event.Type {
	var vals []*yaml.Node
	switch n.Kind {
	case yaml.SequenceNode:
		vals = n.Content
	case yaml.ScalarNode:
		vals = []*yaml.Node{n}
	default:
		l.fail(n, field, "want a list of action types")
		return nil
	}
	var out []event.Type
	for _, v := range vals {
		s := l.str(v, field)
		if l.err != nil {
			return nil
		}
		if allowAll && s == "all" {
			return actionTypes[:]
		}
		t := event.Type(s)
		if typeIndex(t) < 0 {
			l.fail(v, field, "%q is not a customer action type (want one of %s%s)", s, typeNames(), map[bool]string{true: " or all"}[allowAll])
			return nil
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		l.fail(n, field, "empty")
	}
	return out
}

func typeNames() string {
	var s []string
	for _, t := range actionTypes {
		s = append(s, string(t))
	}
	return strings.Join(s, ", ")
}

func (l *loader) ruleNode(n *yaml.Node) *Rule {
	l.rule = ""
	if n.Kind != yaml.MappingNode {
		l.fail(n, "", "a rule must be a mapping with id, when, reason and weight or action")
		return nil
	}
	r := &Rule{Line: n.Line}
	var whenNode, weightNode, actionNode *yaml.Node
	// the id first, so every later error can name the rule
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "id" {
			r.ID = l.str(n.Content[i+1], "id")
			if l.err == nil && !idRe.MatchString(r.ID) {
				l.fail(n.Content[i+1], "id", "%q: want letters, digits, _ . - (at most 64)", r.ID)
			}
		}
	}
	if l.err != nil {
		return nil
	}
	if r.ID == "" {
		l.fail(n, "id", "missing")
		return nil
	}
	l.rule = r.ID
	seen := map[string]bool{}
	bad := false
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if seen[k.Value] {
			l.fail(k, k.Value, "given twice")
			bad = true
			l.flush()
			continue
		}
		seen[k.Value] = true
		switch k.Value {
		case "id":
		case "description":
			r.Description = l.str(v, "description")
		case "applies":
			r.Applies = l.types(v, "applies", true)
		case "when":
			whenNode = v
			r.When = l.str(v, "when")
		case "weight":
			weightNode = v
			r.Weight = l.int(v, "weight", -100, 100)
		case "action":
			actionNode = v
			r.Action = Action(l.str(v, "action"))
			if l.err == nil && r.Action.severity() == 0 && r.Action != ActionAllow {
				l.fail(v, "action", "%q: want allow, challenge:mfa, challenge:phishing_resistant, hold or deny", r.Action)
			}
		case "reason":
			r.Reason = l.str(v, "reason")
			if l.err == nil && !reasonRe.MatchString(r.Reason) {
				l.fail(v, "reason", "%q: want a snake_case code such as new_device", r.Reason)
			}
		default:
			l.fail(k, k.Value, "unknown field (want id, description, applies, when, weight, action, reason)")
		}
		if l.err != nil {
			bad = true
			l.flush()
		}
	}
	switch {
	case bad: // a field's error is reported; what is missing may be its typo
	case whenNode == nil:
		l.fail(n, "when", "missing")
	case r.Reason == "":
		l.fail(n, "reason", "missing")
	case weightNode == nil && actionNode == nil:
		l.fail(n, "weight", "want a weight or an action")
	case weightNode != nil && actionNode != nil:
		l.fail(actionNode, "action", "give a weight or an action, not both")
	}
	if l.err != nil || bad {
		return nil
	}
	if r.Applies == nil {
		r.Applies = actionTypes[:]
	}
	if l.compile(r, whenNode); l.err != nil {
		return nil
	}
	return r
}

func (l *loader) compile(r *Rule, n *yaml.Node) {
	if strings.TrimSpace(r.When) == "" {
		l.fail(n, "when", "empty expression")
		return
	}
	if len(r.When) > maxExprLen {
		l.fail(n, "when", "expression longer than %d bytes", maxExprLen)
		return
	}
	env, err := celEnv()
	if err != nil {
		l.fail(n, "when", "CEL environment: %v", err)
		return
	}
	ast, iss := env.Compile(r.When)
	if iss != nil && iss.Err() != nil {
		e := iss.Errors()[0]
		line := n.Line
		if el := e.Location.Line(); el > 0 {
			line += el - 1
		}
		if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
			line++ // a block scalar starts on the line after its key
		}
		msgs := []string{fmt.Sprintf("%d:%d: %s", e.Location.Line(), e.Location.Column()+1, e.Message)}
		l.err = &PolicyError{Policy: l.name, Line: line, Rule: r.ID, Field: "when", Msg: "CEL: " + strings.Join(msgs, "; ")}
		return
	}
	if !ast.OutputType().IsExactType(cel.BoolType) {
		l.fail(n, "when", "expression has type %s, want bool", ast.OutputType())
		return
	}
	est, err := env.EstimateCost(ast, nilEstimator{})
	if err != nil || est.Max > maxExprCost {
		l.fail(n, "when", "expression too costly to evaluate per decision")
		return
	}
	prg, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		l.fail(n, "when", "CEL: %v", err)
		return
	}
	r.prg = prg
	seen := map[int]bool{}
	for _, ref := range ast.NativeRep().ReferenceMap() {
		if i, ok := varIndex[ref.Name]; ok && !seen[i] {
			seen[i] = true
			r.vars = append(r.vars, i)
		}
	}
	slices.Sort(r.vars)
}

type nilEstimator struct{}

func (nilEstimator) EstimateCallCost(string, string, *cost.AstNode, []cost.AstNode) *cost.CallEstimate {
	return nil
}
func (nilEstimator) EstimateSize(cost.AstNode) *cost.SizeEstimate { return nil }

// errPolicyNil is returned by WatchPolicy for a nil engine.
var errPolicyNil = errors.New("risk: nil engine")
