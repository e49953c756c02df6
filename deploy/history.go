package deploy

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/routie/routie/internal/atomicfile"
)

// Results a deploy ends with.
const (
	ResultRunning     = "in progress"
	ResultSucceeded   = "succeeded"
	ResultRolledBack  = "rolled back"
	ResultFailed      = "failed"
	ResultAborted     = "aborted"
	ResultInterrupted = "interrupted"
)

// Record is one deploy, as `routiectl history` lists it.
type Record struct {
	ID       int        `json:"id"`
	Started  time.Time  `json:"started"`
	Finished *time.Time `json:"finished,omitempty"`
	// Who asked: uid, pid and command of the routiectl (or curl) that started it.
	Who  string `json:"who,omitempty"`
	From string `json:"from"`
	To   string `json:"to"`
	// Canary lists a canary deploy's steps, in percent of the clients; absent for a plain
	// deploy.
	Canary []int  `json:"canary,omitempty"`
	Result string `json:"result"`
	// Why says what decided the result: the figure that tripped a rollback, the command
	// that failed, the probe that never passed.
	Why string `json:"why,omitempty"`
	// Phase is the step the deploy is in (or was in, when it ended).
	Phase string `json:"phase"`
}

// keepRecords bounds the history file.
const keepRecords = 200

// History is the list of past deploys, kept in state.dir/history.json.
type History struct {
	path string

	mu      sync.Mutex // guards records and the file
	records []Record
}

// OpenHistory loads the history in dir. A deploy still "in progress" in the file was cut
// off by a restart of routied: it is recorded as interrupted. A corrupt file is set aside
// (renamed) and reported, and a new history starts.
func OpenHistory(dir string) (*History, []string, error) {
	h := &History{path: filepath.Join(dir, "history.json")}
	var notes []string
	data, err := os.ReadFile(h.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return h, nil, nil
	case err != nil:
		return nil, nil, fmt.Errorf("deploy history %s: %w", h.path, err)
	}
	if err := json.Unmarshal(data, &h.records); err != nil {
		aside := h.path + ".corrupt"
		os.Rename(h.path, aside)
		h.records = nil
		return h, []string{fmt.Sprintf("deploy history %s was corrupt (%v); kept it as %s and started a new one", h.path, err, aside)}, nil
	}
	now := time.Now()
	changed := false
	for i := range h.records {
		r := &h.records[i]
		if r.Result == ResultRunning {
			r.Result = ResultInterrupted
			r.Why = fmt.Sprintf("routied stopped during the %s phase; the active target stayed as saved", r.Phase)
			r.Finished = &now
			changed = true
			notes = append(notes, fmt.Sprintf("deploy %d (%s → %s) was interrupted by a restart during the %s phase", r.ID, r.From, r.To, r.Phase))
		}
	}
	if changed {
		if err := h.saveLocked(); err != nil {
			return nil, nil, err
		}
	}
	return h, notes, nil
}

// begin records a new deploy and returns its ID.
func (h *History) begin(r Record) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r.ID = 1
	if n := len(h.records); n > 0 {
		r.ID = h.records[n-1].ID + 1
	}
	h.records = append(h.records, r)
	if len(h.records) > keepRecords {
		h.records = h.records[len(h.records)-keepRecords:]
	}
	return r.ID, h.saveLocked()
}

// update changes the record id and saves the history.
func (h *History) update(id int, change func(*Record)) (Record, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range h.records {
		if h.records[i].ID == id {
			change(&h.records[i])
			return h.records[i], h.saveLocked()
		}
	}
	return Record{}, fmt.Errorf("deploy %d is not in the history", id)
}

// List returns the records, oldest first.
func (h *History) List() []Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Record(nil), h.records...)
}

func (h *History) saveLocked() error {
	data, err := json.MarshalIndent(h.records, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(h.path, append(data, '\n'), 0o644)
}
