# A stand-in for an AI agent: it prints its prompt, then answers each line
# typed into its terminal. "size" prints the terminal size, "exit N" exits.
printf 'prompt: %s\n' "$RUNYARD_INITIAL_PROMPT"
printf 'key: %s\n' "$RUNYARD_POD_KEY"
while IFS= read -r line; do
	case "$line" in
	size) printf 'size: %s\n' "$(stty size)" ;;
	"exit "*) exit "${line#exit }" ;;
	*) printf 'echo: %s\n' "$line" ;;
	esac
done
