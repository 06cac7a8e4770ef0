package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/bloom"
	logging "github.com/ipfs/go-log/v2"
	bolt "go.etcd.io/bbolt"
)

// The store's records live in one of two engines, behind the small
// interface below (kvTx, kvBucket, kvCursor): a bbolt file (a B+tree of
// 4 KiB pages, copy-on-write: every commit rewrites each leaf it touches
// and the branch pages above it), or a Pebble directory (a log-structured
// merge tree: a commit appends its records to a write-ahead log; sorted
// tables are written later, in the background, in large sequential
// writes). docs/performance.md, "A store that appends", measures one
// against the other.

// Engine names a store engine.
type Engine string

// The engines.
const (
	EngineBolt   Engine = "bolt"
	EnginePebble Engine = "pebble"
)

// ParseEngine checks an engine name.
func ParseEngine(s string) (Engine, error) {
	switch e := Engine(s); e {
	case EngineBolt, EnginePebble:
		return e, nil
	}
	return "", fmt.Errorf("store engine %q: want %q or %q", s, EngineBolt, EnginePebble)
}

// kvTx is a transaction: a read-only snapshot (View) or a write
// transaction (Update) whose writes commit together or not at all, and
// whose reads see its own writes.
type kvTx interface {
	// Bucket returns the named bucket, nil if the store has none of that
	// name (bbolt; a Pebble store has every bucket).
	Bucket(name []byte) kvBucket
}

// kvBucket is a keyspace of a store. Values returned by Get and cursors
// are valid until the transaction ends and must not be changed.
type kvBucket interface {
	Get(key []byte) []byte
	Put(key, value []byte) error
	Delete(key []byte) error
	Cursor() kvCursor
	ForEach(fn func(k, v []byte) error) error
	NextSequence() (uint64, error)
}

// kvCursor walks a bucket in key order; a nil key means no record.
type kvCursor interface {
	First() (k, v []byte)
	Last() (k, v []byte)
	Seek(seek []byte) (k, v []byte)
	Next() (k, v []byte)
	Prev() (k, v []byte)
}

// kvDB is an open engine.
type kvDB interface {
	View(fn func(kvTx) error) error
	Update(fn func(kvTx) error) error
	Close() error
	Path() string
	// written is the engine's write cost so far: page writes (bbolt) or
	// bytes written to the log and tables (Pebble).
	written() (pages, bytes uint64)
}

// engineAt returns the engine of the store at path, ok false if there is
// none: a directory is a Pebble store, a file a bbolt store.
func engineAt(path string) (Engine, bool, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	if fi.IsDir() {
		return EnginePebble, true, nil
	}
	return EngineBolt, true, nil
}

var log = logging.Logger("verity/store")

// bbolt

type boltDB struct{ db *bolt.DB }

func (d boltDB) View(fn func(kvTx) error) error {
	return d.db.View(func(tx *bolt.Tx) error { return fn(boltTx{tx}) })
}

func (d boltDB) Update(fn func(kvTx) error) error {
	return d.db.Update(func(tx *bolt.Tx) error { return fn(boltTx{tx}) })
}

func (d boltDB) Close() error { return d.db.Close() }
func (d boltDB) Path() string { return d.db.Path() }
func (d boltDB) written() (uint64, uint64) {
	st := d.db.Stats().TxStats
	return uint64(st.GetWrite()), 0
}

type boltTx struct{ tx *bolt.Tx }

func (t boltTx) Bucket(name []byte) kvBucket {
	b := t.tx.Bucket(name)
	if b == nil {
		return nil
	}
	return boltBucket{b}
}

type boltBucket struct{ *bolt.Bucket }

func (b boltBucket) Cursor() kvCursor { return b.Bucket.Cursor() }

// Pebble

// pebbleBuckets gives each bucket a one-byte key prefix in a Pebble
// store. The order of this list is the store's format: append only.
var pebbleBuckets = [][]byte{bucketJobs, bucketBallots, bucketCerts, bucketOwn, bucketAudit, bucketEvid, bucketCertIndex}

// pebbleSeqPrefix prefixes a bucket's sequence (NextSequence).
const pebbleSeqPrefix = 0xff

func pebblePrefix(name []byte) (byte, bool) {
	for i, b := range pebbleBuckets {
		if bytes.Equal(b, name) {
			return byte(i + 1), true
		}
	}
	return 0, false
}

// pebbleOptions are the options of a Pebble store: bloom filters on every
// level, so that a read of a key that is not there (a certificate not yet
// held, the commonest read) skips the tables that do not hold it.
func pebbleOptions() *pebble.Options {
	o := &pebble.Options{
		Cache:        pebble.NewCache(256 << 20),
		MemTableSize: 16 << 20,
		Logger:       quietPebble{},
	}
	for i := range o.Levels {
		o.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		o.Levels[i].FilterType = pebble.TableFilter
	}
	return o.EnsureDefaults()
}

// quietPebble drops Pebble's informational lines; errors and fatal
// conditions go to the store's logger.
type quietPebble struct{}

func (quietPebble) Infof(string, ...any) {}
func (quietPebble) Errorf(format string, args ...any) {
	log.Errorf("pebble: "+format, args...)
}
func (quietPebble) Fatalf(format string, args ...any) {
	log.Fatalf("pebble: "+format, args...)
}

func openPebble(path string, readOnly bool) (*pebbleDB, error) {
	o := pebbleOptions()
	o.ReadOnly = readOnly
	db, err := pebble.Open(path, o)
	if err != nil {
		o.Cache.Unref()
		return nil, err
	}
	return &pebbleDB{db: db, path: path, cache: o.Cache}, nil
}

type pebbleDB struct {
	db    *pebble.DB
	path  string
	cache *pebble.Cache
}

func (d *pebbleDB) View(fn func(kvTx) error) error {
	s := d.db.NewSnapshot()
	t := &pebbleTx{r: s}
	err := fn(t)
	t.close()
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	return err
}

// Update runs fn in an indexed batch, committed with an fsync of the log.
// Only the store's writer calls it, so no two batches race.
func (d *pebbleDB) Update(fn func(kvTx) error) error {
	b := d.db.NewIndexedBatch()
	t := &pebbleTx{r: b, w: b}
	err := fn(t)
	t.close()
	if err == nil && t.err != nil {
		err = t.err
	}
	if err == nil {
		err = b.Commit(pebble.Sync)
	}
	if cerr := b.Close(); err == nil {
		err = cerr
	}
	return err
}

func (d *pebbleDB) Close() error {
	err := d.db.Close()
	d.cache.Unref()
	return err
}

func (d *pebbleDB) Path() string { return d.path }

func (d *pebbleDB) written() (uint64, uint64) {
	m := d.db.Metrics()
	total := m.WAL.BytesWritten
	for _, l := range m.Levels {
		total += l.BytesFlushed + l.BytesCompacted
	}
	return 0, total
}

// pebbleReader is what a snapshot and an indexed batch have in common.
type pebbleReader interface {
	Get(key []byte) ([]byte, io.Closer, error)
	NewIter(o *pebble.IterOptions) (*pebble.Iterator, error)
}

type pebbleTx struct {
	r     pebbleReader
	w     *pebble.Batch // nil in a View
	iters []*pebble.Iterator
	err   error // the first error of a read, returned by Update or View
}

func (t *pebbleTx) close() {
	for _, it := range t.iters {
		if err := it.Close(); err != nil && t.err == nil {
			t.err = err
		}
	}
	t.iters = nil
}

func (t *pebbleTx) Bucket(name []byte) kvBucket {
	p, ok := pebblePrefix(name)
	if !ok {
		return nil
	}
	return pebbleBucket{t: t, p: p}
}

type pebbleBucket struct {
	t *pebbleTx
	p byte
}

func (b pebbleBucket) key(k []byte) []byte {
	out := make([]byte, 1+len(k))
	out[0] = b.p
	copy(out[1:], k)
	return out
}

func (b pebbleBucket) Get(k []byte) []byte {
	v, closer, err := b.t.r.Get(b.key(k))
	if err != nil {
		if !errors.Is(err, pebble.ErrNotFound) && b.t.err == nil {
			b.t.err = err
		}
		return nil
	}
	out := bytes.Clone(v)
	if out == nil {
		out = []byte{}
	}
	closer.Close()
	return out
}

func (b pebbleBucket) Put(k, v []byte) error {
	if b.t.w == nil {
		return errors.New("store: write in a read-only transaction")
	}
	return b.t.w.Set(b.key(k), v, nil)
}

func (b pebbleBucket) Delete(k []byte) error {
	if b.t.w == nil {
		return errors.New("store: write in a read-only transaction")
	}
	return b.t.w.Delete(b.key(k), nil)
}

func (b pebbleBucket) NextSequence() (uint64, error) {
	if b.t.w == nil {
		return 0, errors.New("store: write in a read-only transaction")
	}
	key := []byte{pebbleSeqPrefix, b.p}
	var seq uint64
	v, closer, err := b.t.r.Get(key)
	switch {
	case err == nil:
		if len(v) == 8 {
			seq = binary.BigEndian.Uint64(v)
		}
		closer.Close()
	case !errors.Is(err, pebble.ErrNotFound):
		return 0, err
	}
	seq++
	return seq, b.t.w.Set(key, binary.BigEndian.AppendUint64(nil, seq), nil)
}

func (b pebbleBucket) Cursor() kvCursor {
	it, err := b.t.r.NewIter(&pebble.IterOptions{LowerBound: []byte{b.p}, UpperBound: []byte{b.p + 1}})
	if err != nil {
		if b.t.err == nil {
			b.t.err = err
		}
		return pebbleCursor{}
	}
	b.t.iters = append(b.t.iters, it)
	return pebbleCursor{it: it, p: b.p}
}

func (b pebbleBucket) ForEach(fn func(k, v []byte) error) error {
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return nil
}

// pebbleCursor is a bucket's iterator. Keys and values it returns are
// copies: a Pebble iterator's are valid only until it moves.
type pebbleCursor struct {
	it *pebble.Iterator
	p  byte
}

func (c pebbleCursor) at(ok bool) ([]byte, []byte) {
	if c.it == nil || !ok {
		return nil, nil
	}
	return bytes.Clone(c.it.Key()[1:]), append([]byte{}, c.it.Value()...)
}

func (c pebbleCursor) First() ([]byte, []byte) { return c.at(c.it != nil && c.it.First()) }
func (c pebbleCursor) Last() ([]byte, []byte)  { return c.at(c.it != nil && c.it.Last()) }
func (c pebbleCursor) Next() ([]byte, []byte)  { return c.at(c.it != nil && c.it.Next()) }
func (c pebbleCursor) Prev() ([]byte, []byte)  { return c.at(c.it != nil && c.it.Prev()) }
func (c pebbleCursor) Seek(seek []byte) ([]byte, []byte) {
	if c.it == nil {
		return nil, nil
	}
	k := make([]byte, 1+len(seek))
	k[0] = c.p
	copy(k[1:], seek)
	return c.at(c.it.SeekGE(k))
}

// copyPebble writes a consistent copy of the Pebble store at path to dst,
// a directory that must not exist, waiting at most timeout for the lock
// of a process that has it open (ErrLocked after that).
func copyPebble(path, dst string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		d, err := openPebble(path, true)
		if err == nil {
			defer d.Close()
			if err := d.db.Checkpoint(dst); err != nil {
				return fmt.Errorf("copy store %s: %w", path, err)
			}
			return nil
		}
		if !lockErr(err) {
			return fmt.Errorf("open store %s: %w", path, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: %s", ErrLocked, path)
		}
		// A file lock says nothing when it is let go: poll it, as bbolt
		// does for its own.
		time.Sleep(50 * time.Millisecond)
	}
}

// lockErr reports whether err is a Pebble store's lock held elsewhere.
func lockErr(err error) bool {
	return errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES) ||
		strings.Contains(err.Error(), "lock held by current process")
}
