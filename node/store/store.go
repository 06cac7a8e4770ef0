// Package store is a validator node's durable state in one bbolt file: jobs,
// ballots, certificates (with an index by issue time, for catch-up) and the
// node's own ballots. Every write is committed
// (fsync) before the call returns, so what the node acknowledged or
// published survives a crash.
package store

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/go-json-experiment/json/jsontext"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/verity-network/verity/consensus"
	"github.com/verity-network/verity/internal/batch"
	"github.com/verity-network/verity/internal/jsonw"
)

var (
	// bucketLive holds job records under certKey (their deadline, then
	// their id) and this node's own ballots under the same key and 'o'
	// (ownKey), near the end of their range as they come; and in a range
	// of its own, after them, each job's deadline under deadlineKey
	// (certkey.go).
	bucketLive = []byte("jobs_by_deadline")
	// bucketJobs held, in stores written before bucketLive, the records
	// and own ballots under their job's id (then 'o'), and the deadlines
	// under the id then 'd' (legacyDeadlineKey). Nothing writes it any
	// more: whatever Open finds there, it moves (moveJobs), also what an
	// earlier version wrote after the move.
	bucketJobs    = []byte("jobs")
	bucketBallots = []byte("ballots") // job id || validator address
	// bucketCerts holds certificates, in the store's binary form
	// (certcodec.go), under certKey: their job's deadline, then its id.
	bucketCerts = []byte("certs_by_deadline")
	// bucketCertsByJob held certificates under their job's id alone, in
	// stores written before bucketCerts; Open moves them (moveCerts).
	bucketCertsByJob = []byte("certs")
	// bucketOwn held this node's own ballots in stores written before
	// they moved beside their jobs (ownKey); it is still read.
	bucketOwn   = []byte("own_ballots")
	bucketAudit = []byte("audit")    // job id || u64 sequence
	bucketEvid  = []byte("evidence") // validator || job id
	// bucketCertIndex orders certificates by issue time, for catch-up:
	// u64 issued_at (unix ms) || job id, and as value the u64 unix
	// nanoseconds at which this node stored the certificate (the job's
	// FinalAt; empty in stores written before it), then the receipts of
	// the ballots it carries that this node counted (indexValue).
	bucketCertIndex = []byte("cert_index")
)

// ErrNotFound is returned when a record does not exist.
var ErrNotFound = errors.New("not found")

// Store is safe for concurrent use. Writes go through one writer goroutine
// that commits every write waiting at that moment in a single transaction
// (group commit): under load, many writes share one fsync; alone, a write
// commits at once, with no added delay.
type Store struct {
	db *bolt.DB
	// legacyOwn: bucketOwn held own ballots when the store was opened
	// (getOwnAt).
	legacyOwn bool

	mu      sync.RWMutex // held for reading while sending to writes
	closed  bool
	writes  chan *writeReq
	closing chan struct{}
	stopped chan struct{}

	commits atomic.Uint64
	written [numKinds]atomic.Uint64
	rate    batch.Busy // the writes' recent rate, the writer's own
	loaded  atomic.Pointer[func() Load]

	dl deadlineIndex // deadlines.go
}

// Load is how loaded a store's user says it is (SetLoad).
type Load int

const (
	// Light: a commit goes at once, or waits busyLinger while writes
	// come at a busy rate.
	Light Load = iota
	// Loaded: work is queued behind the writes; a commit waits up to
	// loadedLinger for more writes to share it.
	Loaded
	// Saturated: much more work is queued; a commit waits up to
	// saturatedLinger.
	Saturated
)

// SetLoad sets a function that reports how loaded the store's user is.
// Set it before the first write.
func (s *Store) SetLoad(f func() Load) { s.loaded.Store(&f) }

// load reports what the SetLoad function says, Light without one.
func (s *Store) load() Load {
	f := s.loaded.Load()
	if f == nil {
		return Light
	}
	return (*f)()
}

type writeReq struct {
	kind Kind
	fn   func(*bolt.Tx) error
	done chan error
}

// Kind is the kind of record a write stores, for Stats.
type Kind int

// The kinds of write.
const (
	KindJob         Kind = iota // PutJob: a job this node accepted as gateway
	KindJobSeen                 // AddJob: a job received, stored for reads
	KindBallot                  // AddBallot: a ballot received by a gateway
	KindOwnBallot               // PutOwnBallot(WithJob): this node's ballot
	KindCertificate             // PutCertificate
	KindAudit                   // AddAudit
	KindEvidence                // AddEvidence
	// NumKinds is the number of kinds of write.
	NumKinds
)

const numKinds = NumKinds

var kindNames = [numKinds]string{"job", "job_seen", "ballot", "own_ballot", "certificate", "audit", "evidence"}

func (k Kind) String() string {
	if k < 0 || k >= numKinds {
		return fmt.Sprintf("kind(%d)", int(k))
	}
	return kindNames[k]
}

// Stats counts what a store has written since it was opened: cumulative,
// so that a caller subtracts two snapshots.
type Stats struct {
	// Commits counts committed write transactions: each costs bbolt two
	// fdatasyncs (pages, then the meta page).
	Commits uint64
	// Writes counts the write calls committed, by Kind (index Kind).
	Writes [NumKinds]uint64
	// PageWrites counts bbolt's page writes (one per page or run of
	// overflow pages, plus the meta page of each commit).
	PageWrites uint64
}

// Stats returns the store's write counts so far.
func (s *Store) Stats() Stats {
	tx := s.db.Stats().TxStats
	st := Stats{Commits: s.commits.Load(), PageWrites: uint64(tx.GetWrite())}
	for k := range st.Writes {
		st.Writes[k] = s.written[k].Load()
	}
	return st
}

// maxBatch bounds the writes committed in one transaction.
const maxBatch = 1024

// busyLinger is how long a commit waits for more writes while writes come
// at busyRate, so that they share one commit. A store takes two or three
// writes per job (its job or ballot, then the certificate): 400 writes a
// second is well above light load.
const busyLinger = 2 * time.Millisecond

// loadedLinger is how long a commit waits for more writes while the
// store's user says it is loaded (SetLoad): jobs queue behind the
// writes, so a longer wait costs them less than the commits it saves.
// Measured with verity bench, 4 nodes, one ext4 disk, saturated: 2 ms
// gave 1.3 commits per certificate, 10 ms 0.5 and about 1.3 times the
// certificates a second (docs/performance.md, "Longer commits under
// load"). At 200 jobs a second, loaded part of the time, 20 ms raised
// the p50 from about 26 to 39 ms.
const loadedLinger = 10 * time.Millisecond

// saturatedLinger is how long a commit waits for more writes while the
// store's user says it is saturated: on ext4, with a thousand jobs in
// flight, 20 ms took the commits per certificate from 0.10 (10 ms) to
// 0.06, and the certificates a second from 1,250 to 1,273, a median of
// 7 rounds (docs/performance.md, "Longer commits at saturation").
const saturatedLinger = 20 * time.Millisecond

func busyRate() batch.Busy { return batch.Busy{Count: 16, Window: 40 * time.Millisecond} }

// ErrClosed is returned by writes after Close.
var ErrClosed = errors.New("store closed")

// ErrLocked is returned by CopyFile when the store stays locked by the
// process that has it open (a running node) for the whole timeout.
var ErrLocked = errors.New("store is locked by another process")

// update runs fn in a write transaction, committed (fsync) before it
// returns. fn may run more than once (when a batch it shared is rolled back
// by another write's error), so it must not keep state across runs.
func (s *Store) update(kind Kind, fn func(*bolt.Tx) error) error {
	req := &writeReq{kind: kind, fn: fn, done: make(chan error, 1)}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	s.writes <- req
	s.mu.RUnlock()
	return <-req.done
}

func (s *Store) writer() {
	defer close(s.stopped)
	for {
		var first *writeReq
		select {
		case first = <-s.writes:
		case <-s.closing:
			return
		}
		batch := []*writeReq{first}
		// Loaded, or with writes at a busy rate (batch.Busy), the commit
		// waits for more writes to share it; at light load it goes at
		// once.
		var linger *time.Timer
		busy := s.rate.Note(time.Now())
		switch load := s.load(); {
		case load >= Saturated:
			linger = time.NewTimer(saturatedLinger)
		case load == Loaded:
			linger = time.NewTimer(loadedLinger)
		case busy:
			linger = time.NewTimer(busyLinger)
		}
		batch = s.collect(batch, linger)
		s.rate.Batch(len(batch))
		if linger != nil {
			linger.Stop()
		}
		s.commit(batch)
		if err := s.mergeStep(); err != nil {
			storeLog.Warnf("%s: %v", s.db.Path(), err)
		}
	}
}

// collect adds to batch the writes queued, and while linger runs those
// that come, up to maxBatch.
func (s *Store) collect(batch []*writeReq, linger *time.Timer) []*writeReq {
	for len(batch) < maxBatch {
		select {
		case r := <-s.writes:
			s.rate.Note(time.Now())
			batch = append(batch, r)
			continue
		default:
		}
		if linger == nil {
			return batch
		}
		select {
		case r := <-s.writes:
			s.rate.Note(time.Now())
			batch = append(batch, r)
		case <-linger.C:
			return batch
		}
	}
	return batch
}

// commit runs a batch in one transaction; if any write fails, the
// transaction is rolled back and each write runs alone, so that one
// write's error is its own.
func (s *Store) commit(batch []*writeReq) {
	if len(batch) == 1 {
		batch[0].done <- s.updateCounted(batch[:1], batch[0].fn)
		return
	}
	err := s.updateCounted(batch, func(tx *bolt.Tx) error {
		for _, r := range batch {
			if err := r.fn(tx); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		for _, r := range batch {
			r.done <- nil
		}
		return
	}
	for i, r := range batch {
		r.done <- s.updateCounted(batch[i:i+1], r.fn)
	}
}

// updateCounted runs fn in a write transaction and, if it commits, counts
// the commit and the writes of batch.
func (s *Store) updateCounted(batch []*writeReq, fn func(*bolt.Tx) error) error {
	err := s.runWrite(fn)
	if err == nil {
		s.commits.Add(1)
		for _, r := range batch {
			s.written[r.kind].Add(1)
		}
	}
	return err
}

// Open opens or creates the store file at path.
func Open(path string) (*Store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:        5 * time.Second,
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	})
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	var move, indexed, legacyOwn, moveLive bool
	err = db.Update(func(tx *bolt.Tx) error {
		move, indexed = tx.Bucket(bucketCertsByJob) != nil, tx.Bucket(bucketCertIndex) != nil
		for _, b := range [][]byte{bucketJobs, bucketLive, bucketDeadlineLog, bucketBallots, bucketCerts, bucketOwn, bucketAudit, bucketEvid} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		// Nothing writes bucketOwn any more: empty when opened, it stays so.
		legacyOwn = bucketHasKeys(tx.Bucket(bucketOwn))
		// Nor bucketJobs: anything in it was written before bucketLive, or
		// by an earlier version since, or is left by a move cut short.
		moveLive = bucketHasKeys(tx.Bucket(bucketJobs))
		return nil
	})
	st := &Store{db: db, legacyOwn: legacyOwn, writes: make(chan *writeReq), closing: make(chan struct{}), stopped: make(chan struct{}), rate: busyRate()}
	if err == nil {
		err = st.loadDeadlineLog()
	}
	if err == nil && move {
		err = st.moveCerts()
	}
	if err == nil && moveLive {
		err = st.moveJobs()
	}
	if err == nil && !indexed {
		// A store written before the index: index what it holds, after
		// the move, which keys certificates as the index reads them.
		err = db.Update(func(tx *bolt.Tx) error {
			index, err := tx.CreateBucket(bucketCertIndex)
			if err != nil {
				return err
			}
			return tx.Bucket(bucketCerts).ForEach(func(k, v []byte) error {
				c, err := readSummary(v)
				if err != nil {
					// Not indexed, so not served by issue time; it fails
					// where it is read by its job, as it did before.
					return nil
				}
				return index.Put(certIndexKey(c.IssuedAt, common.BytesToHash(k[8:])), nil)
			})
		})
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("init store %s: %w", path, err)
	}
	go st.writer()
	return st, nil
}

// CopyFile writes a consistent copy of the store file at path to dst
// without changing the store: it opens the file read-only under a shared
// lock, waiting at most timeout for the exclusive lock of a process that
// has it open (ErrLocked after that), copies it in one read transaction and
// lets go of it at once. Open the copy to read it while the store's owner
// goes on. A store file that does not exist is an error wrapping
// fs.ErrNotExist.
func CopyFile(path, dst string, timeout time.Duration) error {
	if _, err := os.Stat(path); err != nil {
		return err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: timeout})
	if errors.Is(err, berrors.ErrTimeout) {
		return fmt.Errorf("%w: %s", ErrLocked, path)
	}
	if err != nil {
		return fmt.Errorf("open store %s: %w", path, err)
	}
	defer db.Close()
	if err := db.View(func(tx *bolt.Tx) error { return tx.CopyFile(dst, 0o600) }); err != nil {
		return fmt.Errorf("copy store %s: %w", path, err)
	}
	return nil
}

// Close waits for writes under way, then closes the file.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.closing)
	<-s.stopped
	return s.db.Close()
}

// Path is the file path.
func (s *Store) Path() string { return s.db.Path() }

// Job is what a node keeps about a job.
type Job struct {
	ID common.Hash `json:"job_id"`
	// Message is the signed job message as gossiped: JSON this node
	// encoded, or decoded from a peer. It is stored as it is (encodeJob),
	// once known to be one JSON value.
	Message     json.RawMessage  `json:"message"`
	Output      string           `json:"output,omitempty"`
	Prompt      string           `json:"prompt,omitempty"`
	Gateway     bool             `json:"gateway"` // this node accepted the job
	Status      consensus.Status `json:"status"`
	SubmittedAt time.Time        `json:"submitted_at"`
	Deadline    time.Time        `json:"deadline"`
	FinalAt     time.Time        `json:"final_at,omitzero"`
	// MessageChecked says Message is known to be one JSON value: a job
	// message this node encoded, or one it decoded strictly from a peer,
	// which is its canonical encoding. encodeJob then does not check it
	// again. Not stored.
	MessageChecked bool `json:"-"`
}

// ErrBadJobMessage is a job record whose message is not one JSON value.
var ErrBadJobMessage = errors.New("store: job message is not JSON")

// encodeJob is a job record's JSON. encoding/json would copy the message
// through its compactor, which writes it again byte by byte (about a
// kilobyte, per job on every node); the message is only checked here,
// and appended as it is. The record decodes into a Job like
// json.Marshal's.
func encodeJob(j *Job) ([]byte, error) {
	msg := []byte(j.Message)
	if len(msg) == 0 {
		msg = []byte("null")
	}
	// Anything but one JSON value would make the record unreadable, or
	// let the message's bytes set the record's other fields. jsontext's
	// check is twice as fast as json.Valid's; it also refuses duplicate
	// names and invalid UTF-8, which no message a node encodes or takes
	// from gossip (decoded strictly) holds.
	if !j.MessageChecked && !jsontext.Value(msg).IsValid() {
		return nil, fmt.Errorf("%w: job %x", ErrBadJobMessage, j.ID)
	}
	// The other fields written by hand, as json.Marshal writes them but
	// for HTML escapes, which read back the same: encoding/json spent more
	// on them (the times and the hash through their marshalers, each
	// output checked) than on the kilobyte of message.
	out := make([]byte, 0, 256+len(j.Output)+len(j.Prompt)+len(msg))
	out = append(out, `{"job_id":"0x`...)
	out = append(hex.AppendEncode(out, j.ID[:]), '"')
	if j.Output != "" {
		out = jsonw.AppendString(append(out, `,"output":`...), j.Output)
	}
	if j.Prompt != "" {
		out = jsonw.AppendString(append(out, `,"prompt":`...), j.Prompt)
	}
	out = strconv.AppendBool(append(out, `,"gateway":`...), j.Gateway)
	out = jsonw.AppendString(append(out, `,"status":`...), string(j.Status))
	for _, t := range []struct {
		name string
		at   time.Time
		omit bool
	}{{`,"submitted_at":`, j.SubmittedAt, false}, {`,"deadline":`, j.Deadline, false}, {`,"final_at":`, j.FinalAt, j.FinalAt.IsZero()}} {
		if t.omit {
			continue
		}
		at, err := t.at.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("job %x: %w", j.ID, err)
		}
		out = append(append(out, t.name...), at...)
	}
	out = append(out, `,"message":`...)
	out = append(out, msg...)
	return append(out, '}'), nil
}

func put(tx *bolt.Tx, bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return tx.Bucket(bucket).Put(key, data)
}

func get(tx *bolt.Tx, bucket, key []byte, v any) error {
	data := tx.Bucket(bucket).Get(key)
	if data == nil {
		return ErrNotFound
	}
	return json.Unmarshal(data, v)
}

// PutJob writes a job record, replacing any earlier one. A final status is
// never replaced by a non-final one, and a job whose certificate is stored
// is written with the certificate's status.
func (s *Store) PutJob(j *Job) error {
	data, err := encodeJob(j)
	if err != nil {
		return err
	}
	return s.update(KindJob, func(tx *bolt.Tx) error {
		key := s.certKey(tx, j.ID)
		if stored := recordAt(tx, key); stored != nil && !j.Status.Final() {
			var old Job
			if err := json.Unmarshal(stored, &old); err == nil && old.Status.Final() {
				return nil
			}
		}
		return s.putJobAt(tx, key, j, data)
	})
}

// putJob writes a job record, data being encodeJob(j); if the record is
// not final but the job's certificate is stored (it came first), the
// record written takes the certificate's status, and its issue time as
// FinalAt, so that a job's record always follows its certificate. j itself
// is not changed.
func (s *Store) putJob(tx *bolt.Tx, j *Job, data []byte) error {
	return s.putJobAt(tx, s.certKey(tx, j.ID), j, data)
}

// putJobAt is putJob given the job's certKey, nil if none is stored (it is
// then stored).
func (s *Store) putJobAt(tx *bolt.Tx, key []byte, j *Job, data []byte) error {
	if key == nil {
		ms := uint64(max(j.Deadline.UnixMilli(), 0))
		if err := s.putDeadline(tx, j.ID, ms); err != nil {
			return err
		}
		key = msKey(ms, j.ID)
	} else if !j.Status.Final() {
		if cert := certs(tx).Get(key); cert != nil {
			c, err := readSummary(cert)
			if err != nil {
				return fmt.Errorf("certificate %x: %w", j.ID, err)
			}
			final := *j
			final.Status, final.FinalAt = c.Status, c.IssuedAt
			if data, err = encodeJob(&final); err != nil {
				return err
			}
		}
	}
	return live(tx).Put(key, data)
}

// jobData is a job's stored record, nil if none.
func (s *Store) jobData(tx *bolt.Tx, job common.Hash) []byte { return recordAt(tx, s.certKey(tx, job)) }

// recordAt is the job record stored under key, a job's certKey, nil if
// none or if key is nil.
func recordAt(tx *bolt.Tx, key []byte) []byte {
	if key == nil {
		return nil
	}
	return live(tx).Get(key)
}

// getJob decodes a job's stored record, ErrNotFound if none.
func (s *Store) getJob(tx *bolt.Tx, job common.Hash, j *Job) error {
	data := s.jobData(tx, job)
	if data == nil {
		return ErrNotFound
	}
	return json.Unmarshal(data, j)
}

// certSummary is what the store reads of a stored certificate for its own
// bookkeeping.
type certSummary struct {
	Status     consensus.Status `json:"status"`
	IssuedAt   time.Time        `json:"issued_at"`
	DeadlineMS uint64           `json:"deadline_ms"`
}

// readSummary reads the summary of a stored certificate, in either form.
func readSummary(data []byte) (certSummary, error) {
	var s certSummary
	if !isBinaryCert(data) {
		err := json.Unmarshal(data, &s)
		return s, err
	}
	var c consensus.Certificate
	if err := parseCert(data, &c); err != nil {
		return s, err
	}
	return certSummary{Status: c.Status, IssuedAt: c.IssuedAt, DeadlineMS: c.DeadlineMS}, nil
}

// certIndexKey is a certificate's key in bucketCertIndex.
func certIndexKey(issuedAt time.Time, job common.Hash) []byte {
	return msKey(uint64(max(issuedAt.UnixMilli(), 0)), job)
}

// msKey is a time in unix milliseconds, big-endian, then a job id: the
// shape of the keys of bucketCerts (certKey) and bucketCertIndex, which
// sort by the time.
func msKey(ms uint64, job common.Hash) []byte {
	return append(binary.BigEndian.AppendUint64(make([]byte, 0, 8+common.HashLength), ms), job[:]...)
}

// AddJob writes a job record only if none exists yet; it reports whether it
// wrote.
func (s *Store) AddJob(j *Job) (bool, error) {
	// Most calls find the job stored (a gateway receiving its own job, a
	// re-announcement): check without a write transaction, which would
	// cost a sync for nothing.
	var exists bool
	if err := s.db.View(func(tx *bolt.Tx) error { exists = s.jobData(tx, j.ID) != nil; return nil }); err != nil {
		return false, err
	}
	if exists {
		return false, nil
	}
	data, err := encodeJob(j)
	if err != nil {
		return false, err
	}
	added := false
	err = s.update(KindJobSeen, func(tx *bolt.Tx) error {
		key := s.certKey(tx, j.ID)
		added = recordAt(tx, key) == nil
		if !added {
			return nil
		}
		return s.putJobAt(tx, key, j, data)
	})
	return added, err
}

// Job reads a job record.
func (s *Store) Job(id common.Hash) (*Job, error) {
	var j Job
	err := s.db.View(func(tx *bolt.Tx) error {
		if err := s.getJob(tx, id, &j); err != nil {
			return err
		}
		return s.withCertificate(tx, &j)
	})
	if err != nil {
		return nil, err
	}
	return &j, nil
}

// withCertificate gives a job record that is not final the status of its
// job's certificate, if stored, and the time this node stored it as
// FinalAt: PutCertificate does not rewrite the job record, a page write
// per certificate saved.
func (s *Store) withCertificate(tx *bolt.Tx, j *Job) error {
	if j.Status.Final() {
		return nil
	}
	data := s.certGet(tx, j.ID)
	if data == nil {
		return nil
	}
	c, err := readSummary(data)
	if err != nil {
		return fmt.Errorf("certificate %x: %w", j.ID, err)
	}
	j.Status, j.FinalAt = c.Status, c.IssuedAt
	if v := tx.Bucket(bucketCertIndex).Get(certIndexKey(c.IssuedAt, j.ID)); len(v) >= 8 && binary.BigEndian.Uint64(v) != 0 {
		j.FinalAt = time.Unix(0, int64(binary.BigEndian.Uint64(v)))
	}
	return nil
}

// Jobs calls fn for every job record in order of deadline, then job id,
// until fn returns false.
func (s *Store) Jobs(fn func(*Job) bool) error {
	return s.db.View(func(tx *bolt.Tx) error {
		c := live(tx).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(k) != 8+common.HashLength {
				continue // an own ballot (ownKey)
			}
			var j Job
			if err := json.Unmarshal(v, &j); err != nil {
				return fmt.Errorf("job %x: %w", k[8:], err)
			}
			if err := s.withCertificate(tx, &j); err != nil {
				return err
			}
			if !fn(&j) {
				return nil
			}
		}
		return nil
	})
}

// scan decodes, in key order, every record of bucket whose key starts with
// prefix (all records for a nil prefix) and calls fn with each until fn
// returns false.
func scan[T any](s *Store, bucket, prefix []byte, what string, fn func(*T) bool) error {
	return s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucket).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var rec T
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("%s %x: %w", what, k, err)
			}
			if !fn(&rec) {
				return nil
			}
		}
		return nil
	})
}

// collect is scan into a slice.
func collect[T any](s *Store, bucket, prefix []byte, what string) ([]T, error) {
	var out []T
	err := scan(s, bucket, prefix, what, func(r *T) bool { out = append(out, *r); return true })
	return out, err
}

// StoredBallot is a ballot counted for a job, with when it arrived.
type StoredBallot struct {
	Ballot     consensus.Ballot `json:"ballot"`
	ReceivedAt time.Time        `json:"received_at"`
}

// AddBallot stores a ballot counted for a job. A ballot already stored for
// the same validator and job is kept.
func (s *Store) AddBallot(b *consensus.Ballot, receivedAt time.Time) error {
	return s.AddBallots([]StoredBallot{{Ballot: *b, ReceivedAt: receivedAt}})
}

// AddBallots stores ballots counted for jobs, in one write. A ballot
// already stored for the same validator and job is kept.
func (s *Store) AddBallots(bs []StoredBallot) error {
	if len(bs) == 0 {
		return nil
	}
	data, err := encodeBallots(bs)
	if err != nil {
		return err
	}
	return s.update(KindBallot, func(tx *bolt.Tx) error { return putBallots(tx, bs, data) })
}

func ballotKey(b *consensus.Ballot) []byte { return append(b.JobID.Bytes(), b.Validator.Bytes()...) }

// encodeBallots encodes ballots for putBallots, before the write
// transaction.
func encodeBallots(bs []StoredBallot) ([][]byte, error) {
	data := make([][]byte, len(bs))
	for i := range bs {
		// json.Marshal's bytes for a StoredBallot, without reflection.
		at, err := bs[i].ReceivedAt.MarshalJSON()
		if err != nil {
			return nil, err
		}
		d := bs[i].Ballot.AppendJSON([]byte(`{"ballot":`))
		d = append(append(append(d, `,"received_at":`...), at...), '}')
		data[i] = d
	}
	return data, nil
}

// putBallots writes the ballots not stored yet, data[i] being bs[i]
// encoded.
func putBallots(tx *bolt.Tx, bs []StoredBallot, data [][]byte) error {
	for i := range bs {
		key := ballotKey(&bs[i].Ballot)
		if tx.Bucket(bucketBallots).Get(key) != nil {
			continue
		}
		if err := tx.Bucket(bucketBallots).Put(key, data[i]); err != nil {
			return err
		}
	}
	return nil
}

// Ballots returns the ballots stored for a job, by validator address:
// those stored whole, and those its certificate carries with a receipt
// (PutCertificateData).
func (s *Store) Ballots(job common.Hash) ([]StoredBallot, error) {
	var out []StoredBallot
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketBallots).Cursor()
		for k, v := c.Seek(job[:]); k != nil && bytes.HasPrefix(k, job[:]); k, v = c.Next() {
			var b StoredBallot
			if err := json.Unmarshal(v, &b); err != nil {
				return fmt.Errorf("ballot %x: %w", k, err)
			}
			out = append(out, b)
		}
		return s.receiptBallots(tx, job, &out)
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b StoredBallot) int { return bytes.Compare(a.Ballot.Validator[:], b.Ballot.Validator[:]) })
	return out, nil
}

// receiptBallots adds to out the ballots of job's certificate that this
// node holds receipts of, but for validators out has a ballot of.
func (s *Store) receiptBallots(tx *bolt.Tx, job common.Hash, out *[]StoredBallot) error {
	data := s.certGet(tx, job)
	if data == nil {
		return nil
	}
	var c consensus.Certificate
	if err := decodeCertificate(data, &c); err != nil {
		return fmt.Errorf("certificate %x: %w", job, err)
	}
	v := tx.Bucket(bucketCertIndex).Get(certIndexKey(c.IssuedAt, job))
	if len(v) <= 8 {
		return nil
	}
	receipts := v[8:]
	if len(receipts)%receiptSize != 0 {
		return fmt.Errorf("certificate %x: ballot receipts of %d bytes", job, len(receipts))
	}
	for ; len(receipts) > 0; receipts = receipts[receiptSize:] {
		validator := common.BytesToAddress(receipts[:common.AddressLength])
		if slices.ContainsFunc(*out, func(b StoredBallot) bool { return b.Ballot.Validator == validator }) {
			continue
		}
		b, ok := ballotFromCertificate(&c, validator)
		if !ok {
			return fmt.Errorf("certificate %x: a receipt for %s, whose ballot it does not carry", job, validator.Hex())
		}
		at := time.Unix(0, int64(binary.BigEndian.Uint64(receipts[common.AddressLength:receiptSize])))
		*out = append(*out, StoredBallot{Ballot: b, ReceivedAt: at})
	}
	return nil
}

// AuditRecord is a read of a job's answer or an action a client took on it.
type AuditRecord struct {
	Time   time.Time        `json:"time"`
	Kind   string           `json:"kind"` // "read" or "action"
	Client string           `json:"client"`
	Name   string           `json:"name,omitempty"`
	Detail string           `json:"detail,omitempty"`
	Status consensus.Status `json:"status"` // the job's status when it happened
}

// AddAudit appends a record to a job's audit trail.
func (s *Store) AddAudit(job common.Hash, r *AuditRecord) error {
	return s.update(KindAudit, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAudit)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		key := binary.BigEndian.AppendUint64(job.Bytes(), seq)
		return put(tx, bucketAudit, key, r)
	})
}

// Audit returns a job's audit records in the order they were written.
func (s *Store) Audit(job common.Hash) ([]AuditRecord, error) {
	return collect[AuditRecord](s, bucketAudit, job[:], "audit")
}

// PutOwnBallot records the ballot this node signed for a job, before it is
// published, so that a restarted node re-sends the same ballot instead of
// signing a different one (which would be equivocation). It returns the
// ballot already recorded, if any, and in that case writes nothing.
// deadline is the job's: the ballot is stored under it (certKey) unless a
// deadline is stored for the job already.
func (s *Store) PutOwnBallot(b *consensus.Ballot, deadline time.Time) (*consensus.Ballot, error) {
	return s.PutOwnBallotWithJob(b, deadline, nil)
}

// PutOwnBallotWithJob is PutOwnBallot that also stores the job record j,
// if not nil and absent, in the same transaction: one commit where a
// validator needs both.
func (s *Store) PutOwnBallotWithJob(b *consensus.Ballot, deadline time.Time, j *Job) (*consensus.Ballot, error) {
	// Encoded before the write transaction, which the store's writes
	// share one after the other.
	ballot := b.AppendJSON(nil)
	var job []byte
	var err error
	if j != nil {
		if job, err = encodeJob(j); err != nil {
			return nil, err
		}
	}
	var existing *consensus.Ballot
	err = s.update(KindOwnBallot, func(tx *bolt.Tx) error {
		existing = nil
		key := s.certKey(tx, b.JobID)
		var old consensus.Ballot
		switch err := s.getOwnAt(tx, key, b.JobID, &old); {
		case err == nil:
			existing = &old
			return nil
		case !errors.Is(err, ErrNotFound):
			return err
		}
		// The common case, a validator's first word on a job: nothing of
		// it is stored, so neither a record nor a certificate is looked
		// for under the key made here.
		fresh := key == nil
		if fresh {
			ms := uint64(max(deadline.UnixMilli(), 0))
			if err := s.putDeadline(tx, b.JobID, ms); err != nil {
				return err
			}
			key = msKey(ms, b.JobID)
		}
		if err := live(tx).Put(ownKey(key), ballot); err != nil {
			return err
		}
		switch {
		case j == nil:
			return nil
		case fresh:
			return live(tx).Put(key, job)
		case recordAt(tx, key) != nil:
			return nil
		}
		return s.putJobAt(tx, key, j, job)
	})
	return existing, err
}

// OwnBallot returns the ballot this node signed for a job.
func (s *Store) OwnBallot(job common.Hash) (*consensus.Ballot, error) {
	var b consensus.Ballot
	if err := s.db.View(func(tx *bolt.Tx) error { return s.getOwnAt(tx, s.certKey(tx, job), job, &b) }); err != nil {
		return nil, err
	}
	return &b, nil
}

// ownKey is the key in bucketLive of this node's own ballot for a job
// whose record is under key (its certKey): right after the record, so
// that the two, written in one transaction, share a leaf page
// (docs/performance.md, "Own ballots beside their jobs").
func ownKey(key []byte) []byte { return append(key[:len(key):len(key)], 'o') }

// getOwnAt reads this node's own ballot for a job, under key, the job's
// certKey (nil if none: no ballot is stored there) or, in a store written
// before, in bucketOwn. A store opened with bucketOwn empty does not look
// there: most reads find no ballot (a validator asks before its first
// vote), and each look cost a second search.
func (s *Store) getOwnAt(tx *bolt.Tx, key []byte, job common.Hash, b *consensus.Ballot) error {
	if key != nil {
		if err := get(tx, bucketLive, ownKey(key), b); !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	if !s.legacyOwn {
		return ErrNotFound
	}
	return get(tx, bucketOwn, job[:], b)
}

// bucketHasKeys reports whether b holds any key.
func bucketHasKeys(b *bolt.Bucket) bool {
	k, _ := b.Cursor().First()
	return k != nil
}

// PutCertificate stores a certificate, which makes its job final (Job
// reads the job's status from it), in one transaction, with ballots counted for the job (AddBallots), if any. A
// certificate already stored for the job is kept (the first one wins) and
// returned with stored=false; the ballots are then stored all the same.
//
// The certificate is stored in the store's binary form (certcodec.go),
// encoded before the write transaction, not in it.
func (s *Store) PutCertificate(c *consensus.Certificate, finalAt time.Time, ballots ...StoredBallot) (stored bool, err error) {
	if len(ballots) == 0 {
		// A node gets most certificates it already holds (its own,
		// back from gossip): check without a write transaction, which
		// would cost a sync for nothing.
		held, err := s.HasCertificate(c.JobID)
		if err != nil || held {
			return false, err
		}
	}
	return s.putCertificate(c, finalAt, ballots)
}

// PutNewCertificate is PutCertificate, without ballots, for a caller that
// has just looked for c in the store, or knows it has stored none of its
// job (a node's observer, which looks before it verifies one, or awaits
// the job): it does not look again before the write
// transaction, which checks all the same, so that a certificate of the
// job already there (a different one, or one stored in between) stands
// and stored is false, at the cost of a commit that writes nothing. A
// read saved per certificate.
func (s *Store) PutNewCertificate(c *consensus.Certificate, finalAt time.Time) (stored bool, err error) {
	return s.putCertificate(c, finalAt, nil)
}

func (s *Store) putCertificate(c *consensus.Certificate, finalAt time.Time, ballots []StoredBallot) (stored bool, err error) {
	data := appendCert(make([]byte, 0, certSize(c)), c)
	// The ballots the certificate carries are stored as receipts (who,
	// and when it came) in its index entry, not whole: Ballots rebuilds
	// them from the certificate. The others are stored whole.
	receipts, rest := splitReceipts(c, ballots)
	restData, err := encodeBallots(rest)
	if err != nil {
		return false, err
	}
	err = s.update(KindCertificate, func(tx *bolt.Tx) error {
		stored = false
		key, held := s.certAt(tx, c.JobID)
		if held != nil {
			// Another certificate of the job stands: the ballots are
			// stored whole (rare: encoded here, not before).
			data, err := encodeBallots(ballots)
			if err != nil {
				return err
			}
			return putBallots(tx, ballots, data)
		}
		if err := putBallots(tx, rest, restData); err != nil {
			return err
		}
		if err := s.certPut(tx, c.JobID, key, c.DeadlineMS, data); err != nil {
			return err
		}
		// The job record is not rewritten: Job and Jobs read its final
		// status from the certificate, and FinalAt from the index.
		if err := appended(tx, bucketCertIndex).Put(certIndexKey(c.IssuedAt, c.JobID), indexValue(finalAt, receipts)); err != nil {
			return err
		}
		stored = true
		return nil
	})
	return stored, err
}

// A certificate's entry in bucketCertIndex holds, as its value, the u64
// unix nanoseconds at which this node stored it (0 or no value: not
// known), then a receipt for each ballot of the certificate that this
// node counted as its gateway: the validator's address and the u64 unix
// nanoseconds at which the ballot came. The index is written in issue
// order, so receipts cost no page of their own, where a ballot stored
// whole, under its job's random id, took about two pages and a kilobyte
// (docs/performance.md, "Ballots as receipts").
const receiptSize = common.AddressLength + 8

// indexValue is a certificate's value in bucketCertIndex.
func indexValue(finalAt time.Time, receipts []byte) []byte {
	if finalAt.IsZero() && len(receipts) == 0 {
		return nil
	}
	v := make([]byte, 8, 8+len(receipts))
	if !finalAt.IsZero() {
		binary.BigEndian.PutUint64(v, uint64(finalAt.UnixNano()))
	}
	return append(v, receipts...)
}

// splitReceipts returns the receipts of the ballots that c carries as
// they are, and the other ballots.
func splitReceipts(c *consensus.Certificate, bs []StoredBallot) (receipts []byte, rest []StoredBallot) {
	for i := range bs {
		b := &bs[i]
		if b.Ballot.JobID == c.JobID {
			if r, ok := ballotFromCertificate(c, b.Ballot.Validator); ok && sameBallot(&r, &b.Ballot) {
				receipts = append(receipts, b.Ballot.Validator[:]...)
				receipts = binary.BigEndian.AppendUint64(receipts, uint64(b.ReceivedAt.UnixNano()))
				continue
			}
		}
		rest = append(rest, *b)
	}
	return receipts, rest
}

// sameBallot reports whether a and b are the same ballot, field by field
// (what their encodings would say, without encoding them).
func sameBallot(a, b *consensus.Ballot) bool {
	if a.NetworkID != b.NetworkID || a.JobID != b.JobID || a.OutputHash != b.OutputHash || a.ClaimsRoot != b.ClaimsRoot ||
		a.Validator != b.Validator || !slices.Equal(a.ClaimIndexes, b.ClaimIndexes) || !slices.Equal(a.Verdicts, b.Verdicts) ||
		!bytes.Equal(a.Signature, b.Signature) || (a.Batch == nil) != (b.Batch == nil) {
		return false
	}
	return a.Batch == nil || a.Batch.Index == b.Batch.Index && a.Batch.Count == b.Batch.Count && slices.Equal(a.Batch.Siblings, b.Batch.Siblings)
}

// ballotFromCertificate is the ballot of validator that c carries.
func ballotFromCertificate(c *consensus.Certificate, validator common.Address) (consensus.Ballot, bool) {
	for _, v := range c.Ballots {
		if v.Validator == validator {
			return consensus.Ballot{NetworkID: c.NetworkID, JobID: c.JobID, OutputHash: c.OutputHash, ClaimsRoot: c.ClaimsRoot, Vote: v}, true
		}
	}
	return consensus.Ballot{}, false
}

// Certificate reads the certificate of a job.
func (s *Store) Certificate(job common.Hash) (*consensus.Certificate, error) {
	var c consensus.Certificate
	err := s.db.View(func(tx *bolt.Tx) error {
		data := s.certGet(tx, job)
		if data == nil {
			return ErrNotFound
		}
		return decodeCertificate(data, &c)
	})
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// decodeCertificate decodes a stored certificate: the binary form
// (certcodec.go), or JSON in a store written before it, as a node wrote
// it or took it from a peer, read the fast way when it is in the form a
// node writes (consensus.ParseCertificateJSON), with encoding/json
// otherwise.
func decodeCertificate(data []byte, c *consensus.Certificate) error {
	if isBinaryCert(data) {
		return parseCert(data, c)
	}
	if consensus.ParseCertificateJSON(data, c) {
		return nil
	}
	return json.Unmarshal(data, c)
}

// Certificates calls fn for every stored certificate until fn returns false.
func (s *Store) Certificates(fn func(*consensus.Certificate) bool) error {
	return s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketCerts).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			var cert consensus.Certificate
			if err := decodeCertificate(v, &cert); err != nil {
				return fmt.Errorf("certificate %x: %w", k[8:], err)
			}
			if !fn(&cert) {
				return nil
			}
		}
		return nil
	})
}

// LastIssued returns the issue time of the newest certificate stored, and
// false if there is none.
func (s *Store) LastIssued() (time.Time, bool, error) {
	var at time.Time
	var ok bool
	err := s.db.View(func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(bucketCertIndex).Cursor().Last()
		if len(k) == 8+common.HashLength {
			at, ok = time.UnixMilli(int64(binary.BigEndian.Uint64(k[:8]))), true
		}
		return nil
	})
	return at, ok, err
}

// CompareCertificate reports whether a certificate of c's job is stored
// (held) and whether it is c (same), without decoding it: the same
// binary form, or for a certificate stored as JSON before that form, the
// same bytes as data, c's JSON as received.
func (s *Store) CompareCertificate(c *consensus.Certificate, data []byte) (held, same bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		stored := s.certGet(tx, c.JobID)
		held = stored != nil
		// Most certificates a node is sent it does not hold: c is
		// encoded for the comparison only when it does.
		switch {
		case !held:
		case isBinaryCert(stored):
			same = bytes.Equal(stored, appendCert(make([]byte, 0, certSize(c)), c))
		default:
			same = bytes.Equal(stored, data)
		}
		return nil
	})
	return held, same, err
}

// HasCertificate reports whether a certificate of the job is stored.
func (s *Store) HasCertificate(job common.Hash) (bool, error) {
	var ok bool
	err := s.db.View(func(tx *bolt.Tx) error { ok = s.certGet(tx, job) != nil; return nil })
	return ok, err
}

// CertificatesIssuedFrom calls fn, in order of issue time then job id, for
// every stored certificate issued at or after from (in whole milliseconds),
// until fn returns false. A non-zero after resumes a scan: the certificate
// of job after issued at from, and any before it, are skipped.
func (s *Store) CertificatesIssuedFrom(from time.Time, after common.Hash, fn func(*consensus.Certificate) bool) error {
	seek, skip := certIndexKey(from, after), after != (common.Hash{})
	for {
		// fn runs outside the read transaction: it may write to a slow
		// peer, and an open read transaction would hold up any commit that
		// needs to grow the file's mapping for as long as fn takes.
		page, next, err := s.certPage(seek, skip)
		if err != nil {
			return err
		}
		for i := range page {
			if !fn(&page[i]) {
				return nil
			}
		}
		if next == nil {
			return nil
		}
		seek, skip = next, true
	}
}

// certPageSize is how many certificates CertificatesIssuedFrom reads in
// one read transaction.
const certPageSize = 16

// certPage reads up to certPageSize certificates in index order from the
// index key seek (past it when skip), and the index key of the last one
// read, nil when the index has no more.
func (s *Store) certPage(seek []byte, skip bool) (page []consensus.Certificate, last []byte, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketCertIndex).Cursor()
		for k, _ := c.Seek(seek); k != nil; k, _ = c.Next() {
			if skip && bytes.Equal(k, seek) {
				continue
			}
			if len(page) == certPageSize {
				return nil
			}
			last = bytes.Clone(k)
			id := k[8:]
			data := s.certGet(tx, common.Hash(id))
			if data == nil {
				continue
			}
			var cert consensus.Certificate
			if err := decodeCertificate(data, &cert); err != nil {
				return fmt.Errorf("certificate %x: %w", id, err)
			}
			page = append(page, cert)
		}
		last = nil // the index ends here
		return nil
	})
	return page, last, err
}

// Evidence is a proof of equivocation and when this node learned it.
type Evidence struct {
	consensus.Evidence
	DetectedAt time.Time `json:"detected_at"`
}

// AddEvidence stores evidence against a validator for a job; it reports
// false when evidence for that validator and job is already stored.
func (s *Store) AddEvidence(e *Evidence) (bool, error) {
	key := append(e.Validator.Bytes(), e.First.JobID.Bytes()...)
	added := false
	err := s.update(KindEvidence, func(tx *bolt.Tx) error {
		added = false
		if tx.Bucket(bucketEvid).Get(key) != nil {
			return nil
		}
		added = true
		return put(tx, bucketEvid, key, e)
	})
	return added, err
}

// AllEvidence returns every stored evidence, by validator then job.
func (s *Store) AllEvidence() ([]Evidence, error) {
	return collect[Evidence](s, bucketEvid, nil, "evidence")
}
