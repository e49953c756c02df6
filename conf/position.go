package conf

import (
	"bytes"
	"slices"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// written is where and how one key or table appears in a file. go-toml's decoder only gives
// positions for the errors it finds itself; the checks it cannot make (a duration, a port, a
// rule between two keys) look the key up here to name its line and quote the value as the
// operator wrote it.
type written struct {
	line, column int
	// raw is the value's text as written ("0o660", `"5"`); "" for tables and for values
	// that span lines, which are shown re-formatted instead.
	raw string
	// table is true for a [table] header, arrayTable for an [[array]] header.
	table, arrayTable bool
}

// positions maps each dotted key and table name written in a file to where it was written.
type positions map[string]written

// scanPositions walks a document that go-toml has already decoded without a syntax error. A
// key written twice keeps its first position; go-toml reports the second as an error anyway.
func scanPositions(data []byte) positions {
	pos := positions{}
	var p unstable.Parser
	p.Reset(data)
	var table []string
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			var first *unstable.Node
			table, first, _ = keyParts(e.Key())
			if first != nil {
				pos.add(strings.Join(table, "."), written{
					line:       p.Shape(first.Raw).Start.Line,
					column:     p.Shape(first.Raw).Start.Column,
					table:      e.Kind == unstable.Table,
					arrayTable: e.Kind == unstable.ArrayTable,
				})
			}
		case unstable.KeyValue:
			pos.addKeyValue(&p, data, table, e)
		}
	}
	return pos
}

func (pos positions) add(key string, w written) {
	if _, ok := pos[key]; !ok {
		pos[key] = w
	}
}

// addKeyValue records one key = value, and each key inside it when the value is an inline
// table ("health = { interval = "1s" }" records health.interval too).
func (pos positions) addKeyValue(p *unstable.Parser, data []byte, table []string, kv *unstable.Node) {
	parts, first, last := keyParts(kv.Key())
	if first == nil {
		return
	}
	full := append(slices.Clone(table), parts...)
	w := written{line: p.Shape(first.Raw).Start.Line, column: p.Shape(first.Raw).Start.Column}
	// The value's text runs from the '=' after the last key part to the end of the key-value;
	// go-toml does not give every kind of value node (arrays, inline tables) a range.
	end := int(kv.Raw.Offset + kv.Raw.Length)
	if start := int(last.Raw.Offset + last.Raw.Length); start <= end && end <= len(data) {
		rest := data[start:end]
		if i := bytes.IndexByte(rest, '='); i >= 0 {
			raw := bytes.TrimSpace(rest[i+1:])
			if !bytes.ContainsAny(raw, "\r\n") {
				w.raw = string(raw)
			}
		}
	}
	pos.add(strings.Join(full, "."), w)
	if v := kv.Value(); v != nil && v.Kind == unstable.InlineTable {
		children := v.Children()
		for children.Next() {
			if c := children.Node(); c.Kind == unstable.KeyValue {
				pos.addKeyValue(p, data, full, c)
			}
		}
	}
}

// at returns the dotted key written at line:column, for go-toml errors whose Key() lacks the
// enclosing inline table.
func (pos positions) at(line, column int) (string, bool) {
	for k, w := range pos {
		if w.line == line && w.column == column {
			return k, true
		}
	}
	return "", false
}

// keyParts returns a (possibly dotted) key's parts and its first and last nodes.
func keyParts(it unstable.Iterator) (parts []string, first, last *unstable.Node) {
	for it.Next() {
		n := it.Node()
		if first == nil {
			first = n
		}
		last = n
		parts = append(parts, string(n.Data))
	}
	return parts, first, last
}
