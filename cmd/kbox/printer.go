package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// printer is the one output path of the client commands: a command hands it
// the value to show and the tables that render it, and --format picks
// which one reaches the writer.
type printer struct {
	w    io.Writer
	json bool
}

// newPrinter validates format ("table" or "json").
func newPrinter(w io.Writer, format string) (*printer, error) {
	switch format {
	case "table", "":
		return &printer{w: w}, nil
	case "json":
		return &printer{w: w, json: true}, nil
	}
	return nil, fmt.Errorf("--format %q: want table or json", format)
}

// table is one block of table output: an optional title line, a header
// row and data rows, aligned in columns.
type table struct {
	title  string
	header []string
	rows   [][]string
}

// add appends a row; values are formatted with %v.
func (t *table) add(cells ...any) {
	row := make([]string, len(cells))
	for i, c := range cells {
		row[i] = fmt.Sprint(c)
	}
	t.rows = append(t.rows, row)
}

// print writes v as indented JSON, or the tables separated by blank lines.
func (p *printer) print(v any, tables ...table) error {
	if p.json {
		enc := json.NewEncoder(p.w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	for i, t := range tables {
		if i > 0 {
			if _, err := fmt.Fprintln(p.w); err != nil {
				return err
			}
		}
		if err := t.write(p.w); err != nil {
			return err
		}
	}
	return nil
}

func (t table) write(w io.Writer) error {
	if t.title != "" {
		if _, err := fmt.Fprintln(w, t.title); err != nil {
			return err
		}
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if len(t.header) > 0 {
		fmt.Fprintln(tw, strings.Join(t.header, "\t"))
	}
	for _, r := range t.rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// int32s formats broker lists as "1,2,3".
func int32s(v []int32) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ",")
}

// orDash shows an empty cell as "-".
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
