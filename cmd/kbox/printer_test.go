package main

import (
	"bytes"
	"testing"
)

func TestPrinter(t *testing.T) {
	v := []listedGroup{{Group: "g", State: "Empty", Coordinator: 1}}
	a := table{header: []string{"GROUP", "STATE"}}
	a.add("g", "Empty")
	a.add("a-longer-name", 7)
	b := table{title: "SECOND", header: []string{"X"}}
	for _, tc := range []struct {
		format, want string
		tables       []table
	}{
		{"table", "GROUP          STATE\ng              Empty\na-longer-name  7\n", []table{a}},
		{"", "GROUP          STATE\ng              Empty\na-longer-name  7\n\nSECOND\nX\n", []table{a, b}},
		{"json", "[\n  {\n    \"group\": \"g\",\n    \"state\": \"Empty\",\n    \"protocol_type\": \"\",\n    \"coordinator\": 1\n  }\n]\n", []table{a}},
	} {
		var buf bytes.Buffer
		p, err := newPrinter(&buf, tc.format)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.print(v, tc.tables...); err != nil {
			t.Fatal(err)
		}
		if buf.String() != tc.want {
			t.Errorf("format %q:\n%q\nwant\n%q", tc.format, buf.String(), tc.want)
		}
	}
	if _, err := newPrinter(&bytes.Buffer{}, "yaml"); err == nil || err.Error() != `--format "yaml": want table or json` {
		t.Errorf("yaml: %v", err)
	}
}
