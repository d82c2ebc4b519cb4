"""The Luhn (mod 10) check that payment card numbers carry in their last digit."""

_VALUE = {str(d): d for d in range(10)}
# A doubled digit above 9 counts as its digit sum, i.e. 2d - 9.
_DOUBLED = {str(d): (2 * d if d < 5 else 2 * d - 9) for d in range(10)}


def luhn_valid(digits: str) -> bool:
    """True if `digits` (ASCII digits only, at least 2 of them) passes the Luhn check.

    Refuses (returns False for) anything with a non-digit character, so a caller
    can pass a candidate unchecked.
    """
    if len(digits) < 2 or not digits.isascii() or not digits.isdigit():
        return False
    # From the right: the check digit and every second one count as they are,
    # the digits between them count doubled.
    total = sum(_VALUE[c] for c in digits[-1::-2]) + sum(_DOUBLED[c] for c in digits[-2::-2])
    return total % 10 == 0
