package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// flagSpec is one flag of `kbox up` (or of the client commands) with its
// environment variable: the one table behind flags, env and docs.
type flagSpec struct {
	Name    string
	Env     string
	Default string
	Usage   string
}

// envName is the environment variable for a flag: KBOX_ + NAME_WITH_UNDERSCORES.
func envName(flag string) string {
	return "KBOX_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// applyEnv sets every flag the user did not give on the command line from
// its environment variable, if set.
func applyEnv(fs *pflag.FlagSet, specs []flagSpec) error {
	for _, s := range specs {
		f := fs.Lookup(s.Name)
		if f == nil || f.Changed {
			continue
		}
		if v, ok := os.LookupEnv(s.Env); ok {
			if err := fs.Set(s.Name, v); err != nil {
				return fmt.Errorf("%s=%q: %w", s.Env, v, err)
			}
		}
	}
	return nil
}

// usageWithEnv appends the env var to a flag's usage text.
func usageWithEnv(s flagSpec) string { return fmt.Sprintf("%s (env %s)", s.Usage, s.Env) }

// bindStrings registers string flags from specs into dst (by name).
func bindStrings(cmd *cobra.Command, specs []flagSpec, dst map[string]*string) {
	for _, s := range specs {
		if p, ok := dst[s.Name]; ok {
			cmd.Flags().StringVar(p, s.Name, s.Default, usageWithEnv(s))
		}
	}
}
