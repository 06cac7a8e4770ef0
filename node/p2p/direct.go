package p2p

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	msmux "github.com/multiformats/go-multistream"
)

// directTimeout bounds one direct exchange, either side.
const directTimeout = 5 * time.Second

// DirectProtocol is the stream protocol of messages of kind sent straight
// to one peer: /verity/<network>/direct/<kind>/3.
func DirectProtocol(networkID uint64, kind string) protocol.ID {
	return protocol.ID("/verity/" + strconv.FormatUint(networkID, 10) + "/direct/" + kind + "/" + topicVersion)
}

// DirectHandler judges and takes a message sent straight to this node; its
// verdict goes back to the sender.
type DirectHandler func(ctx context.Context, from peer.ID, data []byte) Verdict

// HandleDirect serves messages of kind sent with SendDirect or
// SendDirectQueued, at most maxSize bytes each (a longer one resets the
// stream). One message or one bundle of messages (bundle.go, at most
// Config.MaxMessageSize bytes) per stream: the sender writes it and closes
// its side, the handler answers with its verdict on each message, one byte
// each in order. A message the handler rejects, a malformed bundle or a
// message over maxSize costs its sender a penalty (Penalise), as a
// rejected gossip message does.
func (n *Network) HandleDirect(kind string, maxSize int, h DirectHandler) error {
	if err := checkKind(kind); err != nil {
		return err
	}
	n.host.SetStreamHandler(DirectProtocol(n.cfg.NetworkID, kind), func(s network.Stream) {
		defer s.Close()
		from := s.Conn().RemotePeer()
		_ = s.SetDeadline(time.Now().Add(directTimeout))
		limit := max(maxSize, n.cfg.MaxMessageSize)
		data, err := io.ReadAll(io.LimitReader(s, int64(limit)+1))
		if err != nil || len(data) > limit || (len(data) > maxSize && !isBundle(data)) {
			_ = s.Reset()
			if len(data) > maxSize {
				n.Penalise(from, "direct "+kind+" too large")
			}
			return
		}
		verdicts, reason := n.judgeDirect(from, data, maxSize, h)
		if reason != "" {
			n.Penalise(from, "direct "+kind+" "+reason)
		}
		_, _ = s.Write(verdicts)
	})
	return nil
}

// judgeDirect judges a direct message, or each message of a direct
// bundle, with h: one verdict byte per message. reason is why the sender
// deserves a penalty, "" if it does not. A malformed bundle, or one with a
// message over maxSize, gets a single Reject.
func (n *Network) judgeDirect(from peer.ID, data []byte, maxSize int, h DirectHandler) ([]byte, string) {
	if !isBundle(data) {
		v := h(n.ctx, from, data)
		if v == Reject {
			return []byte{byte(v)}, "rejected"
		}
		return []byte{byte(v)}, ""
	}
	items, err := decodeBundle(data)
	if err != nil {
		return []byte{byte(Reject)}, "malformed bundle"
	}
	for _, it := range items {
		if len(it) > maxSize {
			return []byte{byte(Reject)}, "too large"
		}
	}
	verdicts, _ := judgeParallel(n.ctx, items, func(ctx context.Context, it []byte) (Verdict, any) {
		return h(ctx, from, it), nil
	})
	out := make([]byte, len(items))
	reason := ""
	for i, v := range verdicts {
		out[i] = byte(v)
		if v == Reject {
			reason = "rejected"
		}
	}
	return out, reason
}

// SendDirect sends data of kind straight to peer p, dialling it if needed
// (from the addresses this node has learnt), and returns nil once p has
// accepted it, ErrRejected or ErrIgnored with p's verdict, or the error
// that kept it from arriving.
func (n *Network) SendDirect(ctx context.Context, p peer.ID, kind string, data []byte) error {
	if err := checkKind(kind); err != nil {
		return err
	}
	return n.sendDirect(ctx, p, kind, [][]byte{data}, nil)[0]
}

// sendDirect sends items of kind to p in one stream, a bundle if there
// are several, and returns the outcome of each, as SendDirect would for
// it alone. written, if not nil, is called once the stream is written
// (or failed), before the verdicts come back.
func (n *Network) sendDirect(ctx context.Context, p peer.ID, kind string, items [][]byte, written func()) []error {
	s, cancel, err := n.writeDirect(ctx, p, kind, encodeBundle(items))
	if written != nil {
		written()
	}
	errs := make([]error, len(items))
	if err != nil {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	defer cancel()
	defer s.Close()
	return readVerdicts(s, kind, p, errs)
}

// writeDirect opens a direct stream of kind to p, writes data and closes
// its side. The stream's deadline is directTimeout from now; cancel ends
// it once the verdicts are read.
func (n *Network) writeDirect(ctx context.Context, p peer.ID, kind string, data []byte) (network.Stream, context.CancelFunc, error) {
	if n.isClosed() {
		return nil, nil, ErrClosed
	}
	ctx, cancel := context.WithTimeout(ctx, directTimeout)
	s, err := n.openStream(ctx, p, DirectProtocol(n.cfg.NetworkID, kind))
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("direct %s to %s: %w", kind, p, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	if _, err = s.Write(data); err == nil {
		err = s.CloseWrite()
	}
	if err != nil {
		_ = s.Reset()
		cancel()
		return nil, nil, fmt.Errorf("direct %s to %s: %w", kind, p, err)
	}
	return s, cancel, nil
}

// readVerdicts reads the peer's verdicts on the len(errs) messages written
// to s into errs: one byte each, or a single Reject that refuses a bundle
// whole.
func readVerdicts(s network.Stream, kind string, p peer.ID, errs []error) []error {
	fail := func(err error) []error {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	verdicts, err := io.ReadAll(io.LimitReader(s, int64(len(errs))+1))
	switch {
	case err != nil:
		return fail(fmt.Errorf("direct %s to %s: no verdict: %w", kind, p, err))
	case len(verdicts) == 0:
		return fail(fmt.Errorf("direct %s to %s: no verdict: %w", kind, p, io.ErrUnexpectedEOF))
	case len(verdicts) == 1 && len(errs) > 1 && Verdict(verdicts[0]) == Reject:
		return fail(fmt.Errorf("direct %s to %s: %w", kind, p, ErrRejected))
	case len(verdicts) != len(errs):
		return fail(fmt.Errorf("direct %s to %s: %d verdicts for %d messages", kind, p, len(verdicts), len(errs)))
	}
	for i, v := range verdicts {
		errs[i] = verdictErr(kind, p, Verdict(v))
	}
	return errs
}

// verdictErr is the outcome of a direct message p judged v.
func verdictErr(kind string, p peer.ID, v Verdict) error {
	switch v {
	case Accept:
		return nil
	case Reject:
		return fmt.Errorf("direct %s to %s: %w", kind, p, ErrRejected)
	default:
		return fmt.Errorf("direct %s to %s: %w", kind, p, ErrIgnored)
	}
}

// openStream opens a stream speaking pid to p, dialling p first if this
// node has no connection to it. Unlike host.NewStream it does not wait for
// identify to finish on a new connection, and it negotiates pid lazily:
// the proposal goes out with the first write, p's answer is read with the
// first read. A ballot to a gateway the validator never met costs the
// handshake's round trip and no more (host.NewStream added identify's and,
// for a peer whose protocols are not known yet, multistream's). A peer
// that does not speak pid fails the exchange at the first read, which for
// a direct message is the verdict's.
func (n *Network) openStream(ctx context.Context, p peer.ID, pid protocol.ID) (network.Stream, error) {
	swarm := n.host.Network()
	if swarm.Connectedness(p) != network.Connected {
		if _, err := swarm.DialPeer(ctx, p); err != nil {
			return nil, err
		}
	}
	s, err := swarm.NewStream(network.WithNoDial(ctx, "dialled"), p)
	if err != nil {
		return nil, err
	}
	if err := s.SetProtocol(pid); err != nil {
		_ = s.Reset()
		return nil, err
	}
	return &lazyStream{Stream: s, rw: msmux.NewMSSelect(s, pid)}, nil
}

// lazyStream is a stream whose protocol is negotiated with its first
// write and read (multistream-select's lazy client).
type lazyStream struct {
	network.Stream
	rw io.ReadWriteCloser
}

func (s *lazyStream) Read(b []byte) (int, error)  { return s.rw.Read(b) }
func (s *lazyStream) Write(b []byte) (int, error) { return s.rw.Write(b) }

// Close bounds the wait for the negotiation's answer, which the lazy
// client reads on close if nothing read it before.
func (s *lazyStream) Close() error {
	_ = s.Stream.SetReadDeadline(time.Now().Add(directTimeout))
	return s.rw.Close()
}

// CloseWrite sends the proposal first if nothing was written: an error
// there shows on the next read.
func (s *lazyStream) CloseWrite() error {
	if f, ok := s.rw.(interface{ Flush() error }); ok {
		_ = f.Flush()
	}
	return s.Stream.CloseWrite()
}
