# An agent that ignores SIGTERM (and SIGHUP, which it gets when its runner
# dies and the terminal hangs up) and starts a child that ignores them too.
# $1 is a marker that appears in both processes' command lines.
trap '' TERM HUP
bash -c 'trap "" TERM HUP; while :; do sleep 1; done' "child-$1" &
echo ready
while :; do sleep 1; done
