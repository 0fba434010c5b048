package risk

import (
	_ "embed"
	"slices"
	"sync"
)

//go:embed builtin.yaml
var builtinSrc []byte

// BuiltinPolicySource returns the text of the built-in policy (builtin.yaml),
// for `kabuto` to print or to start a custom policy from.
func BuiltinPolicySource() []byte { return slices.Clone(builtinSrc) }

var builtin = sync.OnceValue(func() *Policy {
	p, err := LoadPolicy("builtin.yaml", builtinSrc)
	if err != nil {
		panic("risk: built-in policy does not load: " + err.Error())
	}
	return p
})

// BuiltinPolicy returns the compiled built-in policy, which covers the
// account-takeover patterns of 2025 (see builtin.yaml and the README).
func BuiltinPolicy() *Policy { return builtin() }
