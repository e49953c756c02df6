package conf

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// file mirrors the TOML document: one struct per table, tagged with the TOML keys. It is the
// one list of valid tables and keys; unknown-key suggestions, the encoder's tests and the
// example file's tests all read it.
//
// Every value is `any` so that a value of the wrong type reaches our own checks, which name
// the key, quote the value and say what to write; go-toml's own type errors name Go types.
// A nil value means the file does not set the key.
type file struct {
	Listen struct {
		HTTP  any `toml:"http"`
		HTTPS any `toml:"https"`
	} `toml:"listen"`
	TLS struct {
		Mode       any `toml:"mode"`
		Domains    any `toml:"domains"`
		Email      any `toml:"email"`
		CA         any `toml:"ca"`
		CARoot     any `toml:"ca_root"`
		Challenges any `toml:"challenges"`
		Storage    any `toml:"storage"`
		EABKeyID   any `toml:"eab_kid"`
		EABHMAC    any `toml:"eab_hmac"`
		CertFile   any `toml:"cert_file"`
		KeyFile    any `toml:"key_file"`
		Redirect   any `toml:"redirect"`
		HSTS       any `toml:"hsts"`
	} `toml:"tls"`
	Upstream struct {
		Host    any `toml:"host"`
		Initial any `toml:"initial"`
		Ports   any `toml:"ports"`
	} `toml:"upstream"`
	Health struct {
		Path       any `toml:"path"`
		Interval   any `toml:"interval"`
		Timeout    any `toml:"timeout"`
		Passes     any `toml:"passes"`
		Wait       any `toml:"wait"`
		ExpectBody any `toml:"expect_body"`
	} `toml:"health"`
	Drain struct {
		Timeout any `toml:"timeout"`
		Streams any `toml:"streams"`
	} `toml:"drain"`
	Limits struct {
		MaxBody           any `toml:"max_body"`
		MaxConnsPerClient any `toml:"max_conns_per_client"`
		HeaderTimeout     any `toml:"header_timeout"`
		IdleTimeout       any `toml:"idle_timeout"`
	} `toml:"limits"`
	Control struct {
		Socket any `toml:"socket"`
		Mode   any `toml:"mode"`
	} `toml:"control"`
	State struct {
		Dir any `toml:"dir"`
	} `toml:"state"`
	Log struct {
		Level  any `toml:"level"`
		Format any `toml:"format"`
		Access any `toml:"access"`
	} `toml:"log"`
	Metrics struct {
		Listen any `toml:"listen"`
	} `toml:"metrics"`
	Deploy struct {
		Start           any `toml:"start"`
		Stop            any `toml:"stop"`
		StartTimeout    any `toml:"start_timeout"`
		Monitor         any `toml:"monitor"`
		Sustain         any `toml:"sustain"`
		MinRequests     any `toml:"min_requests"`
		MaxErrorRate    any `toml:"max_error_rate"`
		MaxLatencyRatio any `toml:"max_latency_ratio"`
		LatencyFloor    any `toml:"latency_floor"`
	} `toml:"deploy"`
}

// table is one [table] of the file and its keys, in file order.
type table struct {
	name string
	keys []string
}

// schema lists the file's tables and keys, read from file's tags.
func schema() []table {
	var tables []table
	ft := reflect.TypeFor[file]()
	for i := range ft.NumField() {
		f := ft.Field(i)
		t := table{name: f.Tag.Get("toml")}
		for j := range f.Type.NumField() {
			t.keys = append(t.keys, f.Type.Field(j).Tag.Get("toml"))
		}
		tables = append(tables, t)
	}
	return tables
}

// schemaKeys returns every dotted key of the file, in file order.
func schemaKeys() []string {
	var keys []string
	for _, t := range schema() {
		for _, k := range t.keys {
			keys = append(keys, t.name+"."+k)
		}
	}
	return keys
}

// unknownMsg says what to write instead of an unknown key or table: the closest valid name when
// the unknown one looks like a typo or a key put under the wrong table, else the valid names.
func unknownMsg(parts []string, isTable bool) string {
	what := "unknown key"
	if isTable {
		what = "unknown table"
	}
	tables := schema()
	tableNames := make([]string, len(tables))
	for i, t := range tables {
		tableNames[i] = t.name
	}
	keysOf := func(name string) []string {
		for _, t := range tables {
			if t.name == name {
				return t.keys
			}
		}
		return nil
	}
	// elsewhere lists the tables that have leaf as a key, as dotted keys.
	elsewhere := func(leaf, except string) []string {
		var found []string
		for _, t := range tables {
			if t.name != except && slices.Contains(t.keys, leaf) {
				found = append(found, t.name+"."+leaf)
			}
		}
		return found
	}
	listTables := func() string {
		bracketed := make([]string, len(tableNames))
		for i, n := range tableNames {
			bracketed[i] = "[" + n + "]"
		}
		return "; the tables are " + strings.Join(bracketed, ", ")
	}

	head := parts[0]
	keys := keysOf(head)
	if keys == nil {
		// The table itself is unknown ([helth], helth.interval = ..., or a key written
		// above the first [table]).
		t, ok := closest(head, tableNames)
		switch {
		case ok && len(parts) == 2 && slices.Contains(keysOf(t), parts[1]):
			return fmt.Sprintf("%s; did you mean %s.%s?", what, t, parts[1])
		case ok:
			return fmt.Sprintf("%s; did you mean [%s]?", what, t)
		case len(parts) == 1:
			if found := elsewhere(head, ""); len(found) > 0 {
				return fmt.Sprintf("%s; did you mean %s? keys go below their [table]", what, orList(found))
			}
		}
		return what + listTables()
	}
	if len(parts) == 1 {
		// Not expected from go-toml (a known table is never unknown), but never index past it.
		return fmt.Sprintf("%s; [%s] is a table, its keys are %s", what, head, strings.Join(keys, ", "))
	}
	if len(parts) > 2 || isTable {
		return fmt.Sprintf("%s; [%s] has no sub-tables, its keys are %s", what, head, strings.Join(keys, ", "))
	}
	leaf := parts[1]
	if k, ok := closest(leaf, keys); ok {
		return fmt.Sprintf("%s; did you mean %s.%s?", what, head, k)
	}
	if found := elsewhere(leaf, head); len(found) > 0 {
		return fmt.Sprintf("%s; did you mean %s?", what, orList(found))
	}
	return fmt.Sprintf("%s; [%s] has %s", what, head, strings.Join(keys, ", "))
}

// closest returns the candidate the operator most likely meant by s: one a typo away (edit
// distance up to a third of s's length, at least 1), or one that s abbreviates or extends
// ("cert" for "cert_file", "logging" for "log"). ok is false when nothing is that close, so
// a wild guess is never offered.
func closest(s string, candidates []string) (best string, ok bool) {
	limit := max(1, len(s)/3)
	bestDist := limit + 1
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	if bestDist <= limit {
		return best, true
	}
	if len(s) >= 3 {
		for _, c := range candidates {
			if strings.HasPrefix(c, s) || strings.HasPrefix(s, c) {
				return c, true
			}
		}
	}
	return "", false
}

// editDistance is the Levenshtein distance between a and b, in bytes (keys are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// orList joins names as "a", "a or b", "a, b or c".
func orList(names []string) string {
	if len(names) <= 1 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}
