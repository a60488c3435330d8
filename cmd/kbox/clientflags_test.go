package main

import (
	"io"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestFlagTablesEnvIsKBOXPlusName checks every flag table: the env var is
// KBOX_ + the flag's name, upper case, dashes as underscores.
func TestFlagTablesEnvIsKBOXPlusName(t *testing.T) {
	valid := regexp.MustCompile(`^KBOX_[A-Z0-9_]+$`)
	tables := map[string][]flagSpec{"up": upFlags, "client": clientFlags}
	for name, specs := range tables {
		seen := map[string]bool{}
		for _, s := range specs {
			if !valid.MatchString(s.Env) {
				t.Errorf("%s flag --%s: env %q is not KBOX_ + upper case", name, s.Name, s.Env)
				continue
			}
			back := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(s.Env, "KBOX_"), "_", "-"))
			if back != s.Name {
				t.Errorf("%s flag --%s: env %s names flag --%s", name, s.Name, s.Env, back)
			}
			if seen[s.Env] {
				t.Errorf("%s: env %s used twice", name, s.Env)
			}
			seen[s.Env] = true
		}
	}
	if got := envName("advertised-addr"); got != "KBOX_ADVERTISED_ADDR" {
		t.Errorf(`envName("advertised-addr") = %q`, got)
	}
}

// TestClientCommandsHaveClientFlags checks that every client verb takes
// every client flag, with its env var in the help text, and that its long
// help ends with an example.
func TestClientCommandsHaveClientFlags(t *testing.T) {
	root := newRootCommand(io.Discard, io.Discard)
	var verbs []*cobra.Command
	for _, noun := range []string{"topic", "group", "produce", "consume"} {
		c, _, err := root.Find([]string{noun})
		if err != nil || c.Name() != noun {
			t.Fatalf("no command %q: %v", noun, err)
		}
		if !c.HasSubCommands() {
			verbs = append(verbs, c)
		}
		verbs = append(verbs, c.Commands()...)
	}
	if len(verbs) < 11 {
		t.Fatalf("found %d client verbs, want at least 11", len(verbs))
	}
	for _, v := range verbs {
		for _, s := range clientFlags {
			f := v.Flags().Lookup(s.Name)
			if f == nil {
				f = v.PersistentFlags().Lookup(s.Name)
			}
			if f == nil {
				f = v.InheritedFlags().Lookup(s.Name)
			}
			if f == nil {
				t.Errorf("%s: no --%s", v.CommandPath(), s.Name)
				continue
			}
			if f.DefValue != s.Default || !strings.Contains(f.Usage, s.Env) {
				t.Errorf("%s --%s: default %q usage %q; want default %q and %s in usage", v.CommandPath(), s.Name, f.DefValue, f.Usage, s.Default, s.Env)
			}
		}
		_, example, ok := strings.Cut(v.Long, "\nExample:\n  ")
		if !ok || !strings.Contains(example, v.CommandPath()+" ") || strings.Contains(example, "\n") {
			t.Errorf("%s: long help does not end with an example:\n%s", v.CommandPath(), v.Long)
		}
	}
}

func TestParseConfigs(t *testing.T) {
	for _, tc := range []struct {
		in      []string
		want    map[string]string
		wantErr string
	}{
		{in: nil, want: nil},
		{in: []string{"retention.ms=1000", "cleanup.policy=compact,delete"}, want: map[string]string{"retention.ms": "1000", "cleanup.policy": "compact,delete"}},
		{in: []string{"a=b=c"}, want: map[string]string{"a": "b=c"}},
		{in: []string{"empty="}, want: map[string]string{"empty": ""}},
		{in: []string{"novalue"}, wantErr: `--config "novalue": want key=value`},
		{in: []string{"=v"}, wantErr: `--config "=v": want key=value`},
	} {
		got, err := parseConfigs("config", tc.in)
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("parseConfigs(%q) error = %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || len(got) != len(tc.want) {
			t.Errorf("parseConfigs(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			continue
		}
		for k, v := range tc.want {
			if got[k] == nil || *got[k] != v {
				t.Errorf("parseConfigs(%q)[%q] = %v, want %q", tc.in, k, got[k], v)
			}
		}
	}
}

func TestSeeds(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:9092":                  "127.0.0.1:9092",
		" a:1 , b:2 ,":                    "a:1|b:2",
		"127.0.0.1:1,127.0.0.1:2,[::1]:3": "127.0.0.1:1|127.0.0.1:2|[::1]:3",
	} {
		got, err := (&globals{bootstrap: in}).seeds()
		if err != nil || strings.Join(got, "|") != want {
			t.Errorf("seeds(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := (&globals{bootstrap: " , "}).seeds(); err == nil {
		t.Error("seeds of no address: no error")
	}
}

// TestClientFlagsFromEnv: KBOX_BOOTSTRAP and KBOX_FORMAT stand in for the
// flags, and a flag given on the command line wins over the environment.
func TestClientFlagsFromEnv(t *testing.T) {
	addr := startNode(t)
	mustKbox(t, "x\n", "produce", "envtopic", "--bootstrap", addr)

	t.Setenv("KBOX_BOOTSTRAP", addr)
	t.Setenv("KBOX_FORMAT", "json")
	var listed []listedTopic
	decodeJSON(t, mustKbox(t, "", "topic", "list").stdout, &listed)
	if len(listed) != 1 || listed[0].Topic != "envtopic" || listed[0].Partitions != testPartitions {
		t.Fatalf("topic list from env = %+v", listed)
	}

	r := mustKbox(t, "", "topic", "list", "--format", "table")
	if !strings.HasPrefix(r.stdout, "TOPIC ") || !strings.Contains(r.stdout, "envtopic") {
		t.Fatalf("--format table over KBOX_FORMAT=json:\n%s", r.stdout)
	}

	t.Setenv("KBOX_FORMAT", "yaml")
	if r := kbox(t, "", "topic", "list"); r.err == nil || !strings.Contains(r.err.Error(), `--format "yaml"`) {
		t.Fatalf("KBOX_FORMAT=yaml: err %v", r.err)
	}
}
