// Package config reads Kabuto's configuration: command-line flags first,
// then KABUTO_* environment variables, then KABUTO_*_FILE variables naming a
// file that holds the value (for secrets), then the flag's default.
package config

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

// EnvName returns the environment variable for a flag: "db" is KABUTO_DB,
// "hash-key" is KABUTO_HASH_KEY.
func EnvName(flagName string) string {
	return "KABUTO_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Apply sets every flag of fs not given on the command line from its
// environment variable, or from the file its _FILE variable names. Call it
// after fs.Parse. An error names the variable.
func Apply(fs *flag.FlagSet) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		env := EnvName(f.Name)
		v, ok := os.LookupEnv(env)
		if !ok {
			path, fok := os.LookupEnv(env + "_FILE")
			if !fok {
				return
			}
			b, rerr := os.ReadFile(path)
			if rerr != nil {
				err = fmt.Errorf("%s_FILE: %w", env, rerr)
				return
			}
			v = strings.TrimRight(string(b), "\r\n")
		}
		if serr := fs.Set(f.Name, v); serr != nil {
			err = fmt.Errorf("%s=%q: %w", env, v, serr)
		}
	})
	return err
}
