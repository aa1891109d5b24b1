#!/usr/bin/env bash
# Look at Tripwire's firings and dead-letter topics with kcat (docs/firings.md).
#
#   docs/examples/kcat.sh list            # brokers, topics, partitions
#   docs/examples/kcat.sh firings         # firings as JSON envelopes: key, partition, offset, payload
#   docs/examples/kcat.sh firing-lines    # one line per firing record: partition, offset, key
#   docs/examples/kcat.sh dlq             # dead-lettered events with their tripwire.* headers
#
# Settings come from the same variables as Tripwire's own:
#   TRIPWIRE_KAFKA_BOOTSTRAP   (default 127.0.0.1:9092)
#   TRIPWIRE_TOPIC_FIRINGS     (default tripwire.firings)
#   TRIPWIRE_TOPIC_EVENTS_DLQ  (default tripwire.events.dlq)
# FOLLOW=1 keeps consuming instead of exiting at the end of the topic.
#
# Every command reads from the beginning of the topic, without a consumer group. Never use
# `-o end` (or a negative offset) against the embedded Tansu broker: its ListOffsets(LATEST)
# answer is wrong (shared broker notes, gap 1).
#
# Tansu and Debian's kcat: Debian 12's kcat 1.7.1 links librdkafka 2.0.2, which fails
# Tansu's ApiVersions handshake ("ApiVersionRequest failed: Local: Read underflow").
# The same kcat works when it loads the newer librdkafka bundled in the confluent-kafka
# wheel (`pip install confluent-kafka==2.16.1`: librdkafka 2.16.0). This script does that
# by itself when the wheel is importable by $PYTHON (default: .venv/bin/python, else
# python3); KCAT_SYSTEM_LIBRDKAFKA=1 turns it off (Apache Kafka needs no workaround).
# For any other kcat command, tools/kcat does the same (README, "kcat"): it is what the
# tested README recipes for producing events and reading firings use.
# By hand:
#   LIB=$(python -c "import confluent_kafka,glob,os;print(glob.glob(os.path.dirname(confluent_kafka.__file__)+'.libs/librdkafka-*.so.1')[0])")
#   mkdir -p .kcat-lib && ln -sf "$LIB" .kcat-lib/librdkafka.so.1
#   LD_LIBRARY_PATH=$PWD/.kcat-lib kcat -b 127.0.0.1:9092 -L
set -euo pipefail

BOOTSTRAP=${TRIPWIRE_KAFKA_BOOTSTRAP:-127.0.0.1:9092}
FIRINGS=${TRIPWIRE_TOPIC_FIRINGS:-tripwire.firings}
DLQ=${TRIPWIRE_TOPIC_EVENTS_DLQ:-tripwire.events.dlq}
KCAT=${KCAT:-kcat}

if [[ -z ${PYTHON:-} ]]; then
    here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
    if [[ -x $here/../../.venv/bin/python ]]; then
        PYTHON=$here/../../.venv/bin/python
    else
        PYTHON=python3
    fi
fi

# Point the dynamic loader at the wheel's librdkafka (see above).
if [[ ${KCAT_SYSTEM_LIBRDKAFKA:-0} != 1 ]]; then
    lib=$("$PYTHON" -c "import confluent_kafka,glob,os;print(glob.glob(os.path.dirname(confluent_kafka.__file__)+'.libs/librdkafka-*.so.1')[0])" 2>/dev/null || true)
    if [[ -n $lib ]]; then
        libdir=${KCAT_LIB_DIR:-${TMPDIR:-/tmp}/tripwire-kcat-lib}
        mkdir -p "$libdir"
        ln -sf "$lib" "$libdir/librdkafka.so.1"
        export LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    else
        echo "kcat.sh: confluent-kafka not importable by $PYTHON; using the system librdkafka" \
            "(Debian's cannot talk to Tansu)" >&2
    fi
fi

end=(-e)
if [[ ${FOLLOW:-0} == 1 ]]; then
    end=()
fi

case ${1:-firings} in
list)
    exec "$KCAT" -b "$BOOTSTRAP" -L
    ;;
firings)
    # -J: one JSON envelope per record with topic, partition, offset, ts, key, payload;
    # the payload is the firing record as a JSON string. With jq:
    #   docs/examples/kcat.sh firings | jq '{key, partition, offset, firing: (.payload | fromjson)}'
    exec "$KCAT" -b "$BOOTSTRAP" -C -t "$FIRINGS" -o beginning "${end[@]}" -q -J
    ;;
firing-lines)
    # The key of a firing record is its id.
    exec "$KCAT" -b "$BOOTSTRAP" -C -t "$FIRINGS" -o beginning "${end[@]}" -q \
        -f 'partition=%p offset=%o key=%k %s\n'
    ;;
dlq)
    # Value and key are the original bytes; %h prints the headers:
    # tripwire.reason, tripwire.topic, tripwire.partition, tripwire.offset.
    exec "$KCAT" -b "$BOOTSTRAP" -C -t "$DLQ" -o beginning "${end[@]}" -q \
        -f 'partition=%p offset=%o key=%k headers=%h\nvalue=%s\n'
    ;;
*)
    echo "usage: $0 [list|firings|firing-lines|dlq]" >&2
    exit 2
    ;;
esac
