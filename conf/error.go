package conf

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
)

// Error is one problem with one key of a config file, worded for the operator who has to fix
// it. Parse and Load return every problem they find, each an *Error, joined with errors.Join
// (so the text is one problem per line and errors.As finds the first).
type Error struct {
	// File is the name given to Parse, or the path given to Load.
	File string
	// Line is the 1-based line the key is written on; 0 when the key is not in the file
	// (the problem is with its default, or with a pair of keys one of which is absent).
	Line int
	// Key is the dotted key, such as "health.interval"; "" when the file is not valid TOML.
	Key string
	// Msg says what is wrong, quoting the bad value, and how to fix it.
	Msg string
}

// Error formats as "file:line: key: msg", leaving out whatever is unknown.
func (e *Error) Error() string {
	s := e.File
	switch {
	case e.Line > 0 && s == "":
		s = fmt.Sprintf("line %d", e.Line)
	case e.Line > 0:
		s = fmt.Sprintf("%s:%d", s, e.Line)
	}
	if e.Key != "" {
		if s != "" {
			s += ": "
		}
		s += e.Key
	}
	if s == "" {
		return e.Msg
	}
	return s + ": " + e.Msg
}

// joinErrors returns the problems in the order they appear in the file, those without a line
// last, as one error; nil if there are none.
func joinErrors(errs []*Error) error {
	if len(errs) == 0 {
		return nil
	}
	slices.SortStableFunc(errs, func(a, b *Error) int {
		if (a.Line == 0) != (b.Line == 0) {
			if a.Line == 0 {
				return 1
			}
			return -1
		}
		return cmp.Compare(a.Line, b.Line)
	})
	all := make([]error, len(errs))
	for i, e := range errs {
		all[i] = e
	}
	return errors.Join(all...)
}
