package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// clientFlags is the table of flags every client command (topic, produce,
// consume, group) shares. They are persistent on each client noun, so
// `kbox topic list --bootstrap h:9092` and `KBOX_BOOTSTRAP=h:9092 kbox
// topic list` mean the same.
var clientFlags = []flagSpec{
	{Name: "bootstrap", Env: envName("bootstrap"), Default: "127.0.0.1:9092", Usage: "comma-separated Kafka bootstrap addresses"},
	{Name: "format", Env: envName("format"), Default: "table", Usage: "output format: table or json"},
}

// adminTimeout bounds every admin command (topic, group): an unreachable
// broker is an error after this long, not a hang.
const adminTimeout = 30 * time.Second

// bindClientFlags adds the client flags to cmd as persistent flags and
// applies their environment variables before any verb runs.
func bindClientFlags(cmd *cobra.Command, g *globals) {
	for _, s := range clientFlags {
		switch s.Name {
		case "bootstrap":
			cmd.PersistentFlags().StringVar(&g.bootstrap, s.Name, s.Default, usageWithEnv(s))
		case "format":
			cmd.PersistentFlags().StringVar(&g.format, s.Name, s.Default, usageWithEnv(s))
		}
	}
	cmd.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		return applyEnv(cmd.Flags(), clientFlags)
	}
}

// seeds splits --bootstrap into addresses.
func (g *globals) seeds() ([]string, error) {
	var out []string
	for _, s := range strings.Split(g.bootstrap, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--bootstrap: no address given")
	}
	return out, nil
}

// client opens a franz-go client on --bootstrap with extra options.
func (g *globals) client(opts ...kgo.Opt) (*kgo.Client, error) {
	seeds, err := g.seeds()
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...), kgo.ClientID("kbox")}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	return cl, nil
}

// admin opens an admin client and a context bounded by adminTimeout. The
// returned func closes both.
func (g *globals) admin(cmd *cobra.Command) (context.Context, *kadm.Client, func(), error) {
	cl, err := g.client()
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), adminTimeout)
	return ctx, kadm.NewClient(cl), func() { cancel(); cl.Close() }, nil
}

// adminSession is what most admin verbs start with: the --format printer
// and an admin client; done closes the client.
func (g *globals) adminSession(cmd *cobra.Command) (context.Context, *kadm.Client, *printer, func(), error) {
	p, err := g.printer(cmd)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	ctx, adm, done, err := g.admin(cmd)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	return ctx, adm, p, done, nil
}

// printer returns the printer for --format on cmd's stdout.
func (g *globals) printer(cmd *cobra.Command) (*printer, error) {
	return newPrinter(cmd.OutOrStdout(), g.format)
}

// parseKV splits "key=value" as given to --config and --header.
func parseKV(flag, s string) (string, string, error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return "", "", fmt.Errorf("--%s %q: want key=value", flag, s)
	}
	return k, v, nil
}

// parseConfigs turns repeated --config key=value into kadm's config map.
func parseConfigs(flag string, kvs []string) (map[string]*string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	out := make(map[string]*string, len(kvs))
	for _, s := range kvs {
		k, v, err := parseKV(flag, s)
		if err != nil {
			return nil, err
		}
		out[k] = kadm.StringPtr(v)
	}
	return out, nil
}
