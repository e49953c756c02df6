package metrics

import "strconv"

// contentType is Prometheus's text exposition format, the one routied writes:
// https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format
const contentType = "text/plain; version=0.0.4; charset=utf-8"

// family is a metric family: the name, type and help text written once before its samples.
type family struct {
	name, typ, help string
}

// text appends a scrape in the text format to b. The format wants each family's samples right
// after its HELP and TYPE lines, so write a family's head, then all its samples, then the next.
type text struct {
	b []byte
}

// head writes f's HELP and TYPE lines. Write it only when at least one sample follows: a
// family without samples is left out of the scrape.
func (t *text) head(f family) {
	t.b = append(t.b, "# HELP "...)
	t.b = append(t.b, f.name...)
	t.b = append(t.b, ' ')
	t.b = appendEscaped(t.b, f.help, false)
	t.b = append(t.b, "\n# TYPE "...)
	t.b = append(t.b, f.name...)
	t.b = append(t.b, ' ')
	t.b = append(t.b, f.typ...)
	t.b = append(t.b, '\n')
}

// uint writes a sample of the series name (a family's name, or for a histogram or summary
// the name with _bucket, _sum or _count) with labels given as name, value pairs. Give the
// labels sorted by name, le last, as the Prometheus client library wrote them: the series
// then read the same as before to whoever greps a scrape. Counts are written as integers,
// exact beyond the 2^53 a float64 holds.
func (t *text) uint(name string, v uint64, labels ...string) {
	t.series(name, labels)
	t.b = strconv.AppendUint(t.b, v, 10)
	t.b = append(t.b, '\n')
}

// float writes a sample like uint. strconv spells the infinities and NaN as the format does:
// +Inf, -Inf, NaN.
func (t *text) float(name string, v float64, labels ...string) {
	t.series(name, labels)
	t.b = strconv.AppendFloat(t.b, v, 'g', -1, 64)
	t.b = append(t.b, '\n')
}

func (t *text) series(name string, labels []string) {
	t.b = append(t.b, name...)
	if len(labels) > 0 {
		t.b = append(t.b, '{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				t.b = append(t.b, ',')
			}
			t.b = append(t.b, labels[i]...)
			t.b = append(t.b, `="`...)
			t.b = appendEscaped(t.b, labels[i+1], true)
			t.b = append(t.b, '"')
		}
		t.b = append(t.b, '}')
	}
	t.b = append(t.b, ' ')
}

// appendEscaped appends s escaped as the format wants a help text (backslash and line feed)
// or, with quote, a label value (double quote too). A line feed left raw would end the line
// and a raw quote the value: a scraper would reject the whole scrape.
func appendEscaped(b []byte, s string, quote bool) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b = append(b, `\\`...)
		case c == '\n':
			b = append(b, `\n`...)
		case c == '"' && quote:
			b = append(b, `\"`...)
		default:
			b = append(b, c)
		}
	}
	return b
}
