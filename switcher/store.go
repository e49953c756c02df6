package switcher

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/routie/routie/internal/atomicfile"
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
	data, err := json.MarshalIndent(saved, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(s.path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	return nil
}
