"""h2c echo upstream for tests/ground_truth.rs (the gRPC cases).

Listens on 127.0.0.1 (port chosen by the system), prints `listening <port>` on stdout, and serves
HTTP/2 over cleartext with prior knowledge, as nginx's `grpc_pass grpc://...` speaks it. Every
request is answered with a text body listing the request's header fields exactly as they were
decoded from the HEADERS/CONTINUATION frames, in order, one per line, pseudo-header fields
included; the first line mimics an HTTP/1.1 request line so the test reads the body like the
head the HTTP echo returns:

    POST /c/case/ HTTP/2
    :method: POST
    :scheme: http
    :path: /c/case/
    host: example.com
    ...

Header validation is switched off: a field nginx sends twice must arrive twice, not be refused.
The process runs until its standard input closes (the test holds the other end).
"""

import socket
import sys
import threading

import h2.config
import h2.connection
import h2.events
import h2.exceptions

TIMEOUT = 5.0


def head(fields):
    """The body: a request line, then every field as `name: value`."""
    pseudo = dict(fields)
    lines = ["%s %s HTTP/2" % (pseudo.get(":method", "-"), pseudo.get(":path", "-"))]
    lines.extend("%s: %s" % (name, value) for name, value in fields)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "replace")


def answer(conn, stream_id, fields):
    body = head(fields)
    conn.send_headers(
        stream_id,
        [
            (":status", "200"),
            ("content-type", "text/plain"),
            ("content-length", str(len(body))),
        ],
    )
    conn.send_data(stream_id, body, end_stream=True)


def serve(sock):
    sock.settimeout(TIMEOUT)
    config = h2.config.H2Configuration(
        client_side=False,
        header_encoding="utf-8",
        validate_inbound_headers=False,
        normalize_inbound_headers=False,
    )
    conn = h2.connection.H2Connection(config=config)
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    requests = {}
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    requests[event.stream_id] = list(event.headers)
                    if event.stream_ended is not None:
                        answer(conn, event.stream_id, requests.pop(event.stream_id))
                elif isinstance(event, h2.events.DataReceived):
                    conn.acknowledge_received_data(
                        event.flow_controlled_length, event.stream_id
                    )
                elif isinstance(event, h2.events.StreamEnded):
                    if event.stream_id in requests:
                        answer(conn, event.stream_id, requests.pop(event.stream_id))
                elif isinstance(event, h2.events.ConnectionTerminated):
                    sock.sendall(conn.data_to_send())
                    return
            sock.sendall(conn.data_to_send())
    except (OSError, h2.exceptions.ProtocolError) as e:
        print("h2c echo: %s" % e, file=sys.stderr, flush=True)
    finally:
        sock.close()


def main():
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    print("listening %d" % listener.getsockname()[1], flush=True)

    def accept():
        while True:
            sock, _ = listener.accept()
            threading.Thread(target=serve, args=(sock,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    sys.stdin.read()


if __name__ == "__main__":
    main()
