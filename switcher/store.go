package switcher

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Saved is what survives a restart: which target serves, which one stands by, and the canary
// with its share, if one runs.
type Saved struct {
	Active  string `json:"active"`
	Standby string `json:"standby,omitempty"`
	// Canary is the target taking Weight percent of the clients; "" when none runs.
	Canary string `json:"canary,omitempty"`
	Weight int    `json:"weight,omitempty"`
	// CanarySalt picks which clients the canary takes (proxy.Split.Salt); kept so that the
	// clients' cookies keep them on their side across a restart.
	CanarySalt uint32    `json:"canary_salt,omitempty"`
	Updated    time.Time `json:"updated"`
}

// Store keeps Saved in one JSON file. Writes are atomic (temp file, fsync, rename, fsync of
// the directory), so a crash leaves either the old state or the new one, never half of each.
type Store struct {
	path string
}

// NewStore returns a Store for the file "state.json" in dir.
func NewStore(dir string) *Store { return &Store{path: filepath.Join(dir, "state.json")} }

// Path returns the state file's path.
func (s *Store) Path() string { return s.path }

// Load reads the saved state. A missing file returns fs.ErrNotExist (wrapped); a file that is
// not valid state returns an error naming the path, so the caller can report it and go on.
func (s *Store) Load() (Saved, error) {
	data, err := os.ReadFile(s.path)
	if err != nil {
		return Saved{}, err
	}
	var saved Saved
	if err := json.Unmarshal(data, &saved); err != nil {
		return Saved{}, fmt.Errorf("state file %s is corrupt (%v); it will be rewritten at the next switch", s.path, err)
	}
	if saved.Active == "" {
		return Saved{}, fmt.Errorf("state file %s has no active target; it will be rewritten at the next switch", s.path)
	}
	return saved, nil
}

// Save writes saved atomically.
func (s *Store) Save(saved Saved) error {
	dir := filepath.Dir(s.path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create state directory: %w", err)
	}
	data, err := json.MarshalIndent(saved, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".state-*.json")
	if err != nil {
		return fmt.Errorf("write state: %w (check that state.dir %s is writable)", err, dir)
	}
	defer os.Remove(tmp.Name()) // a no-op after the rename
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	// The rename is durable only once the directory entry is.
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync state directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, fs.ErrInvalid) {
		return fmt.Errorf("sync state directory: %w", err)
	}
	return nil
}
