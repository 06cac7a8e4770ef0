package p2p

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// Catch-up: a node asks a peer for the certificates it missed, over a
// request/response protocol, /verity/<network>/certs/sync/4.
//
// Wire format: the requester writes its request (at most
// SyncLimits.MaxRequest bytes) and closes its side; the responder writes
// each item as a uvarint length and that many bytes, at most MaxItems items
// of at most MaxItemSize bytes and MaxResponse bytes in all, then closes the
// stream. What a request and an item mean is the caller's (the node's);
// this layer bounds them. A responder serves at most maxSyncServing
// requests at once and one per peer; it resets the stream of any other.
const (
	syncTimeout    = 10 * time.Second
	maxSyncServing = 4
)

// Errors of RequestCertSync.
var (
	// ErrSyncBusy is returned when the peer refused the request (it
	// serves as many as it will) or reset the stream.
	ErrSyncBusy = errors.New("peer did not answer the sync request")
	// ErrSyncResponse is returned for a response over the limits; the
	// peer is penalised.
	ErrSyncResponse = errors.New("sync response over its limits")
)

// SyncLimits bound one catch-up exchange. Both sides apply them.
type SyncLimits struct {
	MaxRequest  int // bytes of a request
	MaxItems    int // items of a response
	MaxItemSize int // bytes of one item
	MaxResponse int // bytes of a response, framing excluded
}

// CertSyncProtocol is the catch-up protocol of a network:
// /verity/<network>/certs/sync/4.
func CertSyncProtocol(networkID uint64) protocol.ID {
	return protocol.ID("/verity/" + strconv.FormatUint(networkID, 10) + "/certs/sync/" + topicVersion)
}

// SyncHandler answers a catch-up request from a peer: it calls send with
// each item, in order, and stops when send returns an error (the response
// is full, or the stream failed).
type SyncHandler func(ctx context.Context, from peer.ID, req []byte, send func(item []byte) error) error

// errSyncFull is what send returns once the response holds its limit.
var errSyncFull = errors.New("sync response full")

// HandleCertSync serves catch-up requests with h, within lim.
func (n *Network) HandleCertSync(lim SyncLimits, h SyncHandler) {
	serving := make(chan struct{}, maxSyncServing)
	peers := &syncPeers{active: map[peer.ID]bool{}}
	n.host.SetStreamHandler(CertSyncProtocol(n.cfg.NetworkID), func(s network.Stream) {
		from := s.Conn().RemotePeer()
		select {
		case serving <- struct{}{}:
			defer func() { <-serving }()
		default:
			_ = s.Reset()
			return
		}
		if !peers.start(from) {
			_ = s.Reset()
			return
		}
		defer peers.done(from)
		defer s.Close()
		_ = s.SetDeadline(time.Now().Add(syncTimeout))
		req, err := io.ReadAll(io.LimitReader(s, int64(lim.MaxRequest)+1))
		if err != nil || len(req) > lim.MaxRequest {
			_ = s.Reset()
			if len(req) > lim.MaxRequest {
				n.Penalise(from, "sync request too large")
			}
			return
		}
		w := bufio.NewWriter(s)
		items, total := 0, 0
		var frame [binary.MaxVarintLen64]byte
		send := func(item []byte) error {
			if items == lim.MaxItems || len(item) > lim.MaxItemSize || total+len(item) > lim.MaxResponse {
				return errSyncFull
			}
			items++
			total += len(item)
			if _, err := w.Write(frame[:binary.PutUvarint(frame[:], uint64(len(item)))]); err != nil {
				return err
			}
			_, err := w.Write(item)
			return err
		}
		if err := h(n.ctx, from, req, send); err != nil && !errors.Is(err, errSyncFull) {
			log.Debugw("sync request not answered", "peer", from, "err", err)
			_ = s.Reset()
			return
		}
		if err := w.Flush(); err != nil {
			_ = s.Reset()
		}
	})
}

// syncPeers is the set of peers being served, one request each.
type syncPeers struct {
	mu     sync.Mutex
	active map[peer.ID]bool
}

func (p *syncPeers) start(id peer.ID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.active[id] {
		return false
	}
	p.active[id] = true
	return true
}

func (p *syncPeers) done(id peer.ID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.active, id)
}

// RequestCertSync sends req to peer p and calls each with every item of
// the answer, in order, until the answer ends or each returns an error
// (which RequestCertSync returns). An answer over lim resets the stream,
// penalises p and returns ErrSyncResponse.
func (n *Network) RequestCertSync(ctx context.Context, p peer.ID, req []byte, lim SyncLimits, each func(item []byte) error) error {
	if n.isClosed() {
		return ErrClosed
	}
	if len(req) > lim.MaxRequest {
		return fmt.Errorf("sync request of %d bytes, limit %d", len(req), lim.MaxRequest)
	}
	ctx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	s, err := n.host.NewStream(ctx, p, CertSyncProtocol(n.cfg.NetworkID))
	if err != nil {
		return fmt.Errorf("sync with %s: %w", p, err)
	}
	defer s.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	if _, err := s.Write(req); err != nil {
		_ = s.Reset()
		return fmt.Errorf("sync with %s: %w: %w", p, ErrSyncBusy, err)
	}
	if err := s.CloseWrite(); err != nil {
		_ = s.Reset()
		return fmt.Errorf("sync with %s: %w: %w", p, ErrSyncBusy, err)
	}
	r := bufio.NewReader(s)
	items, total := 0, 0
	for {
		size, err := binary.ReadUvarint(r)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			_ = s.Reset()
			return fmt.Errorf("sync with %s: %w: %w", p, ErrSyncBusy, err)
		}
		if items == lim.MaxItems || size > uint64(lim.MaxItemSize) || total+int(size) > lim.MaxResponse {
			_ = s.Reset()
			n.Penalise(p, "sync response over its limits")
			return fmt.Errorf("sync with %s: %w: item %d of %d bytes after %d bytes", p, ErrSyncResponse, items+1, size, total)
		}
		item := make([]byte, size)
		if _, err := io.ReadFull(r, item); err != nil {
			_ = s.Reset()
			return fmt.Errorf("sync with %s: %w: %w", p, ErrSyncBusy, err)
		}
		items++
		total += int(size)
		if err := each(item); err != nil {
			_ = s.Reset()
			return err
		}
	}
}
