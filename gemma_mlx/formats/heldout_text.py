"""A built-in held-out text for quantization quality reports (original prose, varied topics)."""

HELDOUT_TEXT = """\
The river had been rising for three days before anyone in the village thought to move the \
grain. By the time the miller's son ran up the hill with the news, the water had already \
reached the lowest step of the chapel, and the old men who usually sat there arguing about \
the weather had moved their bench to the square. Nobody panicked. The village had flooded \
before, in the spring of the year the bridge was built, and again when the dam upstream \
released more water than anyone had been told it would. What people remembered from those \
years was not the water itself but the work that came after: the mud in every cellar, the \
smell of wet plaster, the way the whole street lent each other brooms and buckets.

In mathematics, a prime number is a whole number greater than one whose only divisors are \
one and itself. The first few are 2, 3, 5, 7, 11 and 13. Euclid showed more than two \
thousand years ago that there are infinitely many of them: if you multiply any finite list \
of primes together and add one, the result is not divisible by any prime on the list, so \
some prime is missing from it. The distribution of primes is irregular in detail but \
remarkably smooth on average; the number of primes below a large number n is close to n \
divided by its natural logarithm.

To make a simple loaf of bread, mix five hundred grams of flour with ten grams of salt and \
seven grams of dried yeast. Add three hundred and fifty millilitres of warm water and stir \
until no dry flour remains. Knead the dough for about ten minutes, until it is smooth and \
springs back when pressed. Leave it covered in a warm place for an hour, then shape it, let \
it rise again for forty minutes and bake it at two hundred and twenty degrees for half an \
hour. The loaf is done when it sounds hollow when tapped underneath.

The committee met on Tuesday to review the budget for the coming year. Most of the \
discussion concerned the library, whose roof has leaked since the storm in February. The \
treasurer proposed repairing it in two stages, spreading the cost over two years, but \
several members argued that a partial repair would only cost more in the end. After a long \
debate the committee voted seven to four to carry out the full repair this summer and to \
postpone the new playground until the following spring.

def moving_average(values, window):
    \"\"\"Return the mean of each run of `window` consecutive values.\"\"\"
    if window <= 0:
        raise ValueError("window must be positive")
    total = sum(values[:window])
    result = [total / window]
    for i in range(window, len(values)):
        total += values[i] - values[i - window]
        result.append(total / window)
    return result

Light from the Sun takes a little over eight minutes to reach the Earth, and about four \
hours to reach Neptune. The nearest star beyond the Sun is so far away that its light, \
travelling at nearly three hundred thousand kilometres every second, needs more than four \
years to arrive. When we look at the night sky we are therefore looking into the past: \
some of the faint smudges visible through a small telescope are galaxies whose light set \
out millions of years before there were any people to see it.

She opened the letter slowly, as if the words inside might change if she hurried. It was \
short. Her grandmother wrote that the orchard had done well that autumn, that the dog was \
getting old and slept most of the day by the stove, and that the neighbours had finally \
painted their fence the colour they had been discussing for eleven years. At the bottom, \
in smaller writing, she had added: come in the spring, when the apple trees are in flower. \
I would like to show you which ones your grandfather planted.
"""
