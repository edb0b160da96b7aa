# Prints $1 numbered lines, then "END", then waits for input.
i=0
while [ "$i" -lt "$1" ]; do
	printf 'line %05d of some output\n' "$i"
	i=$((i + 1))
done
echo END
read -r line
