"""Calibration texts in Latin and Cyrillic scripts: European languages, Turkish, Vietnamese."""

LATIN_CYRILLIC_TEXTS: dict[str, str] = {
    "English": """\
The lighthouse keeper's logbook for the winter of that year is mostly about fog. Entry after \
entry records the hour it rolled in from the sea, the hour it lifted, and the number of times \
the horn had to be sounded in between. Only occasionally does something else slip through: a \
seal asleep on the landing stage, a fishing boat that came in too close and had to be waved \
off with a lantern, a note that the coffee had run out and the supply boat was four days \
late. Reading it now, you get the sense of a man who found the routine comforting rather than \
dull.

Volcanoes form where molten rock from deep inside the Earth finds a way to the surface. Most \
of them sit along the edges of tectonic plates, either where one plate slides beneath another \
or where two plates pull apart. The character of an eruption depends largely on how much gas \
and silica the magma contains. Runny, low-silica lava, like that of Hawaii, tends to flow out \
steadily, while thick, gas-rich magma can build up pressure until it explodes, throwing ash \
kilometres into the sky.

If your bicycle chain keeps slipping, start by checking how worn it is. A chain stretches \
slightly with use, and once it has lengthened by about half a percent it no longer meshes \
cleanly with the teeth of the cassette. Cheap gauges make this easy to measure. If the chain \
is fine, look at the rear derailleur: turn the barrel adjuster a quarter turn at a time while \
shifting through the gears until each change is crisp and quiet.

The city museum will open a new exhibition next month devoted to the history of public \
transport. Curators have spent two years collecting tickets, timetables, uniforms and \
photographs, many of them donated by the families of former drivers and conductors. The \
centrepiece is a restored tram from the 1920s, which visitors will be able to board. Entry \
will be free on the first Sunday of every month.

"Do you have a minute? I wanted to ask about the interview on Thursday."
"Of course. Are you nervous?"
"A little. I'm not sure what they'll want to know about my last job."
"Just be honest about what you did and what you learned. And prepare one or two questions of \
your own; it shows you're actually interested."
"That's a good idea. I'd like to ask how the team decides what to work on."

Chess players sometimes say that the hardest move to find is a quiet one: not a capture or a \
check, but a small step that improves a piece and waits. Beginners tend to look for action, \
while stronger players spend most of their time asking what their opponent wants to do next \
and how to make it slightly harder.
""",
    "German": """\
Als Lena zum ersten Mal allein mit dem Nachtzug nach Wien fuhr, war sie vierzehn. Ihre Mutter \
hatte ihr ein Brot mit Käse, eine Thermoskanne mit Tee und einen Zettel mit der Telefonnummer \
der Tante in die Tasche gesteckt. Im Abteil saß ein älterer Herr, der die ganze Zeit \
Kreuzworträtsel löste und sie gelegentlich nach einem Wort fragte, das er nicht wusste. Gegen \
Mitternacht schlief sie ein, und als sie aufwachte, rollte der Zug schon langsam durch die \
Vororte, die im grauen Morgenlicht alle gleich aussahen.

Pflanzen gewinnen ihre Energie durch Photosynthese. In den Chloroplasten ihrer Blätter wird \
Lichtenergie genutzt, um aus Kohlendioxid und Wasser Zucker herzustellen; als Nebenprodukt \
entsteht Sauerstoff. Der grüne Farbstoff Chlorophyll absorbiert vor allem rotes und blaues \
Licht, während grünes Licht zum großen Teil reflektiert wird – deshalb erscheinen uns die \
meisten Blätter grün. Im Herbst baut der Baum das Chlorophyll ab, und andere Farbstoffe, die \
vorher verdeckt waren, werden sichtbar.

Wer eine Wand streichen möchte, sollte zuerst den Boden mit Folie abdecken und die Kanten der \
Fenster und Türen mit Malerkrepp abkleben. Löcher und Risse werden mit Spachtelmasse gefüllt \
und nach dem Trocknen glatt geschliffen. Danach trägt man mit einer Rolle die Farbe in \
gleichmäßigen Bahnen von oben nach unten auf. Meistens sind zwei Anstriche nötig; dazwischen \
sollte die Farbe mindestens vier Stunden trocknen.

Die Gemeinde hat am Mittwoch beschlossen, das alte Freibad zu sanieren, statt es zu \
schließen. Die Kosten werden auf rund zwei Millionen Euro geschätzt, ein Teil davon soll aus \
Fördermitteln des Landes kommen. Die Arbeiten beginnen im Herbst, damit das Bad zur nächsten \
Saison wieder öffnen kann.

„Hast du schon gehört? Der Bäcker an der Ecke hört Ende des Monats auf."
„Wirklich? Schade, seine Brezeln waren die besten in der Stadt."
„Angeblich findet er niemanden, der den Laden übernehmen will."
„Vielleicht sollten wir eine Bäckerei aufmachen."
„Du stehst doch nicht einmal vor acht Uhr auf."

Eulen können ihren Kopf um bis zu zweihundertsiebzig Grad drehen, ohne dass die Blutzufuhr \
zum Gehirn unterbrochen wird. Möglich machen das zusätzliche Halswirbel und besonders \
elastische Blutgefäße, die sich bei der Drehung nicht abklemmen.
""",
    "French": """\
Chaque été, mon oncle repeignait la barque bleue qu'il gardait au fond du jardin, même s'il \
ne s'en servait presque jamais. Il disait qu'un bateau bien entretenu finit toujours par \
trouver une occasion de naviguer. Un matin d'août, il nous a réveillés à cinq heures, a \
chargé la barque sur une remorque et nous a emmenés jusqu'au lac. L'eau était parfaitement \
lisse, une brume légère flottait au-dessus de la surface, et pendant deux heures nous n'avons \
entendu que le bruit des rames et, de temps en temps, le cri d'un héron.

Le cerveau humain contient environ quatre-vingt-six milliards de neurones, reliés entre eux \
par des connexions appelées synapses. Lorsque nous apprenons quelque chose de nouveau, \
certaines de ces connexions se renforcent tandis que d'autres s'affaiblissent. C'est ce que \
les chercheurs appellent la plasticité cérébrale. Le sommeil joue un rôle essentiel dans ce \
processus : pendant la nuit, le cerveau trie les informations de la journée et consolide \
celles qui lui semblent importantes.

Pour réussir une vinaigrette simple, mélangez dans un bol une cuillère à café de moutarde, \
une pincée de sel et deux cuillères à soupe de vinaigre de vin. Ajoutez ensuite six cuillères \
à soupe d'huile d'olive, petit à petit, en fouettant sans arrêt pour que la sauce épaississe. \
Poivrez, goûtez et ajustez l'acidité si nécessaire. Une échalote finement hachée ou quelques \
herbes fraîches la rendront encore meilleure.

La bibliothèque municipale prolongera ses horaires d'ouverture à partir du mois prochain. \
Elle sera désormais accessible jusqu'à vingt-et-une heures en semaine et ouvrira aussi le \
dimanche matin. Selon la mairie, cette décision répond à une demande forte des étudiants et \
des personnes qui travaillent en journée.

— Tu viens au marché avec moi samedi ?
— Ça dépend, tu pars à quelle heure ?
— Vers neuf heures, avant qu'il y ait trop de monde.
— D'accord, mais on s'arrête prendre un café en revenant.
— Marché conclu.

Dans les Alpes, les marmottes passent près de six mois par an à hiberner. Leur cœur ralentit \
jusqu'à quelques battements par minute et leur température descend presque au niveau de celle \
du terrier. Au printemps, elles ont perdu jusqu'à un tiers de leur poids.
""",
    "Spanish": """\
Mi abuela tenía una libreta de tapas rojas donde apuntaba todas las recetas que le gustaban. \
No seguía ningún orden: junto a un guiso de lentejas podía aparecer un remedio para la tos, \
la dirección de una prima lejana o la letra de una canción que había escuchado en la radio. \
Cuando murió, la libreta pasó de mano en mano entre sus hijos, y cada uno añadió algo en las \
últimas páginas. Hoy la guarda mi madre en el cajón de la cocina, y cada vez que la abrimos \
descubrimos algún detalle que no habíamos visto antes.

Los glaciares son enormes masas de hielo que se forman cuando la nieve se acumula año tras \
año sin llegar a derretirse. Con el peso, las capas inferiores se compactan y se convierten \
en hielo, que poco a poco empieza a deslizarse ladera abajo. Aunque parezcan inmóviles, \
algunos glaciares avanzan varios metros al día. Al moverse, arrastran rocas y tallan valles \
en forma de U que siguen siendo visibles miles de años después de que el hielo haya \
desaparecido.

Para cambiar una rueda pinchada, aparca en un lugar seguro y llano, enciende las luces de \
emergencia y coloca el triángulo detrás del coche. Afloja las tuercas un poco antes de \
levantar el vehículo con el gato. Después, termina de quitarlas, retira la rueda y coloca la \
de repuesto. Aprieta las tuercas en forma de cruz, baja el coche y vuelve a apretarlas con \
fuerza.

El ayuntamiento ha anunciado la construcción de un nuevo carril bici que conectará el centro \
de la ciudad con el campus universitario. El proyecto tendrá una longitud de seis kilómetros \
y se espera que esté terminado antes del próximo verano. Varias asociaciones de vecinos han \
celebrado la noticia, aunque algunos comerciantes temen perder plazas de aparcamiento.

—¿Has visto mis llaves?
—Creo que las dejaste encima de la nevera.
—¿Y qué hacían ahí?
—No lo sé, pero es la tercera vez esta semana.

En el pueblo de mis padres, las fiestas de agosto duran una semana entera. Hay verbena en la \
plaza cada noche, una carrera de sacos para los niños y una comida popular el último día, en \
la que todo el mundo trae algo para compartir. Aunque muchos vecinos viven ya en la ciudad, \
casi todos vuelven para esas fechas.
""",
    "Portuguese": """\
O farol da ilha ficava a meia hora de caminhada da vila, subindo por um trilho estreito entre \
as pedras. Quando eu era criança, meu pai me levava até lá nos domingos de vento, e ficávamos \
sentados no muro baixo olhando as ondas baterem contra as rochas lá embaixo. Ele contava que, \
antigamente, o faroleiro precisava subir a escada em caracol várias vezes por noite para \
limpar as lentes e conferir o óleo. Hoje tudo é automático, mas eu ainda gosto de imaginar \
aquele homem solitário, com uma lanterna na mão, vigiando o mar.

As abelhas não são os únicos polinizadores importantes. Morcegos, borboletas, besouros e até \
alguns pássaros, como os beija-flores, transportam pólen de uma flor para outra enquanto se \
alimentam de néctar. No Brasil, muitas árvores da Amazônia dependem de morcegos para se \
reproduzir, porque suas flores se abrem apenas à noite. Sem esses animais, a produção de \
frutos diminuiria drasticamente, afetando tanto a floresta quanto as pessoas que vivem dela.

Para fazer um bom arroz soltinho, lave o arroz em água corrente até que ela saia quase \
transparente. Refogue meia cebola picada e um dente de alho em um fio de azeite, acrescente o \
arroz e mexa por dois minutos. Junte o dobro de água fervente, sal a gosto, e cozinhe em fogo \
baixo com a panela semitampada até a água secar. Desligue o fogo e deixe descansar tampado \
por cinco minutos antes de servir.

A prefeitura informou que as obras de recuperação do mercado municipal começam na próxima \
segunda-feira. Durante a reforma, que deve durar oito meses, os comerciantes serão \
transferidos para uma estrutura provisória na praça ao lado.

— Você vai mesmo correr a maratona este ano?
— Vou tentar. Estou treinando há quatro meses.
— E o joelho, está melhor?
— Muito melhor. O fisioterapeuta disse que posso continuar, desde que não exagere.

Nas cidades grandes, o calor fica preso entre o asfalto e o concreto, e a temperatura pode \
ser vários graus mais alta do que no campo ao redor. Plantar árvores nas calçadas e criar \
telhados verdes são formas simples de reduzir esse efeito, conhecido como ilha de calor.
""",
    "Italian": """\
La bottega del falegname si trovava in fondo a un vicolo così stretto che due persone non \
riuscivano a camminarci affiancate. Dentro c'era sempre odore di segatura e di colla calda, e \
la luce entrava da un'unica finestra alta, piena di ragnatele. Il vecchio Bruno lavorava lì \
da più di cinquant'anni e non aveva mai voluto una macchina elettrica: diceva che il legno \
bisogna sentirlo sotto le mani, altrimenti non ti dice dove vuole essere tagliato. I ragazzi \
del quartiere passavano a guardarlo, e qualcuno, col tempo, aveva imparato il mestiere.

Il suono viaggia nell'aria a circa trecentoquaranta metri al secondo, molto più lentamente \
della luce. Per questo, durante un temporale, vediamo il lampo prima di sentire il tuono. \
Contando i secondi che passano tra i due e dividendo per tre, si ottiene una stima \
approssimativa della distanza del fulmine in chilometri. Nell'acqua, invece, il suono è più \
di quattro volte più veloce, ed è per questo che le balene riescono a comunicare anche a \
grandi distanze.

Per preparare un buon risotto, scaldate prima il brodo e tenetelo sul fuoco basso. In una \
pentola larga fate appassire una cipolla tritata nel burro, poi aggiungete il riso e \
tostatelo per un paio di minuti, mescolando. Sfumate con mezzo bicchiere di vino bianco e, \
quando è evaporato, cominciate ad aggiungere il brodo un mestolo alla volta. Dopo circa \
diciotto minuti spegnete il fuoco, mantecate con burro e parmigiano e lasciate riposare un \
minuto.

Il comune ha annunciato che da settembre gli autobus urbani saranno gratuiti per tutti gli \
studenti fino ai diciannove anni. L'iniziativa, finanziata in parte dalla regione, ha \
l'obiettivo di ridurre il traffico davanti alle scuole.

«Che ne dici di andare al mare domenica?»
«Se non piove, volentieri. Parto io o guidi tu?»
«Guido io, tu porti i panini.»

Le api operaie vivono solo poche settimane d'estate, ma quelle nate in autunno possono \
sopravvivere fino alla primavera. Durante l'inverno restano strette intorno alla regina e, \
facendo vibrare i muscoli delle ali, mantengono il centro dell'alveare a una temperatura di \
oltre trenta gradi.
""",
    "Russian": """\
Каждую осень дед собирался на рыбалку к дальнему озеру, до которого нужно было идти пешком \
почти три часа. Он выходил ещё затемно, с рюкзаком, в котором лежали термос, хлеб, луковица и \
коробка с блёснами, и возвращался только к вечеру. Рыбы он приносил немного, но всегда \
рассказывал о том, что видел по дороге: то лося, вышедшего к ручью, то стаю журавлей, \
улетавших на юг. Сейчас я понимаю, что дело было вовсе не в рыбе, а в тишине, которую он так \
любил.

Северное сияние возникает, когда заряженные частицы солнечного ветра попадают в магнитное \
поле Земли. Поле направляет их к полюсам, где они сталкиваются с атомами кислорода и азота в \
верхних слоях атмосферы. При этом атомы начинают светиться: кислород даёт зелёный и красный \
цвет, а азот — синий и фиолетовый. Чаще всего сияние видно за Полярным кругом, но во время \
сильных магнитных бурь его иногда наблюдают и гораздо южнее.

Чтобы сварить вкусную гречневую кашу, сначала переберите крупу и промойте её холодной водой. \
Затем обжарьте гречку на сухой сковороде несколько минут, пока не появится лёгкий ореховый \
запах. Переложите её в кастрюлю, залейте водой в соотношении один к двум, посолите и доведите \
до кипения. Убавьте огонь, накройте крышкой и варите минут пятнадцать, не помешивая. В конце \
добавьте кусочек сливочного масла и дайте каше постоять под крышкой.

В городе на следующей неделе откроется новый детский технопарк. В нём будут работать кружки \
по робототехнике, программированию и трёхмерному моделированию. Занятия для школьников будут \
бесплатными, записаться можно через сайт городской администрации.

— Ты не знаешь, во сколько завтра собрание?
— Кажется, в шесть, но лучше уточни у Марины.
— Хорошо. А ты пойдёшь?
— Постараюсь, если успею с работы.

Зимой на Байкале лёд бывает настолько прозрачным, что сквозь него видно камни на дне на \
глубине нескольких метров. Местные жители прокладывают по нему дороги и ездят на машинах \
между посёлками.
""",
    "Polish": """\
W małym miasteczku, w którym się wychowałam, wszyscy znali panią Helenę z poczty. Siedziała \
za okienkiem od rana do popołudnia, ważyła paczki, sprzedawała znaczki i pamiętała, kto czeka \
na list z zagranicy. Kiedy ktoś długo nie przychodził, potrafiła zapytać sąsiadów, czy \
wszystko w porządku. Dzieciom dawała cukierki z szuflady, a starszym ludziom pomagała \
wypełniać formularze, których nikt nie rozumiał. Gdy przeszła na emeryturę, pół miasta \
przyszło na jej pożegnanie.

Wieloryby należą do ssaków, choć spędzają całe życie w wodzie. Oddychają powietrzem, dlatego \
co jakiś czas muszą wypływać na powierzchnię. Płetwal błękitny, największe znane zwierzę na \
Ziemi, może osiągać ponad trzydzieści metrów długości i ważyć więcej niż dwadzieścia słoni. \
Mimo tych rozmiarów żywi się głównie maleńkimi skorupiakami, które odcedza z wody za pomocą \
fiszbinów.

Żeby przygotować domowe pierogi ruskie, ugotuj kilogram ziemniaków i przeciśnij je przez \
praskę. Dodaj do nich pół kilograma twarogu, podsmażoną na maśle cebulę, sól i pieprz. Z \
mąki, ciepłej wody, odrobiny oleju i szczypty soli zagnieć elastyczne ciasto, rozwałkuj je \
cienko i wykrawaj szklanką krążki. Na każdy nałóż łyżeczkę farszu, sklej brzegi i gotuj w \
osolonej wodzie przez około trzy minuty od wypłynięcia.

Władze miasta poinformowały, że w przyszłym miesiącu rozpocznie się remont zabytkowego mostu \
nad rzeką. Na czas prac ruch samochodowy zostanie wstrzymany, a piesi będą mogli korzystać z \
tymczasowej kładki.

— Jedziesz w weekend do rodziców?
— Chyba tak, mama prosiła, żebym pomógł w ogrodzie.
— To pozdrów ich ode mnie.
— Jasne, na pewno się ucieszą.
""",
    "Turkish": """\
Dedemin köydeki evinin önünde yaşlı bir ceviz ağacı vardı. Yaz akşamları bütün aile o ağacın \
altında toplanır, uzun bir masanın etrafında oturup geç saatlere kadar sohbet ederdi. Annem \
çay demler, teyzem evde yaptığı kurabiyeleri getirir, biz çocuklar da ağacın dallarına \
tırmanmak için birbirimizle yarışırdık. Dedem ise hep aynı sandalyede oturur, tespihini \
çekerek gençliğinde yaptığı yolculukları anlatırdı. O hikâyelerin yarısının doğru olup \
olmadığını hâlâ bilmiyorum, ama hepsini ezbere hatırlıyorum.

Kutup ayıları aslında siyah bir deriye sahiptir; beyaz görünmelerinin nedeni tüylerinin içi \
boş ve şeffaf olmasıdır. Bu tüyler ışığı dağıtır ve hayvanın çevresindeki karla uyum \
sağlamasına yardımcı olur. Kalın yağ tabakası sayesinde buz gibi suda saatlerce yüzebilirler. \
Ne yazık ki deniz buzunun her yıl daha erken erimesi, av bulmalarını giderek zorlaştırıyor.

Evde yoğurt mayalamak için bir litre sütü kaynatın ve parmağınızı yakmayacak kadar ılınmasını \
bekleyin. Bir kâse içinde iki yemek kaşığı yoğurdu biraz sütle iyice karıştırın, sonra bunu \
tencereye ekleyin. Tencerenin kapağını kapatın, üzerini kalın bir battaniyeyle örtün ve sekiz \
ile on saat arasında hiç kıpırdatmadan bekletin. Yoğurt kıvam aldıktan sonra buzdolabına \
kaldırın.

Belediye, şehir merkezindeki tarihi çarşının restorasyonunun tamamlandığını açıkladı. İki yıl \
süren çalışmalar sırasında binaların çatıları yenilendi ve eski taş döşemeler özenle \
onarıldı. Çarşı önümüzdeki hafta sonu yeniden ziyaretçilere açılacak.

— Yarın sabah erken kalkabilecek misin?
— Denerim ama söz veremem.
— Tren yedi buçukta kalkıyor, kaçırırsak bir sonraki öğleden sonra.
— Tamam, alarmı üç kez kurarım.

İstanbul Boğazı, Karadeniz ile Marmara Denizi'ni birbirine bağlayan yaklaşık otuz \
kilometrelik bir su yoludur. Yüzeydeki akıntı kuzeyden güneye doğru akarken, daha derinlerde \
tuzlu ve ağır su ters yönde ilerler.
""",
    "Vietnamese": """\
Mỗi sáng, bà ngoại tôi đều dậy từ lúc trời còn tối để nấu một nồi cháo trắng. Bà nói rằng \
cháo phải nấu thật chậm trên lửa nhỏ thì hạt gạo mới nở đều và ngọt. Trong lúc chờ cháo chín, \
bà ra vườn tưới rau, nhặt vài quả ớt và hái mấy lá hành. Khi cả nhà thức dậy, trên bàn đã có \
sẵn cháo nóng, một đĩa trứng muối và ít dưa cải. Giờ bà đã đi xa, nhưng mỗi lần ngửi thấy mùi \
cháo buổi sớm, tôi lại nhớ đến dáng bà lom khom bên bếp.

Sông Mê Kông bắt nguồn từ cao nguyên Tây Tạng và chảy qua sáu quốc gia trước khi đổ ra Biển \
Đông. Khi đến Việt Nam, con sông chia thành nhiều nhánh, tạo nên vùng đồng bằng màu mỡ nuôi \
sống hàng chục triệu người. Mỗi năm, nước lũ mang theo một lượng lớn phù sa bồi đắp cho ruộng \
đồng. Tuy nhiên, việc xây dựng đập ở thượng nguồn và tình trạng xâm nhập mặn đang khiến nông \
dân ở đây gặp nhiều khó khăn.

Để pha một ly cà phê sữa đá ngon, bạn cho khoảng hai muỗng cà phê xay vào phin, lắc nhẹ cho \
bột phẳng rồi đặt nắp gài lên. Rót một chút nước sôi để bột cà phê nở trong ba mươi giây, sau \
đó rót đầy phin. Trong lúc chờ cà phê nhỏ giọt, cho hai muỗng sữa đặc vào ly. Khi cà phê đã \
chảy hết, khuấy đều với sữa rồi thêm đá là có thể thưởng thức.

Thành phố vừa khánh thành một tuyến xe buýt điện mới nối trung tâm với khu công nghiệp phía \
bắc. Theo ban quản lý, tuyến xe hoạt động từ năm giờ sáng đến mười giờ tối, với tần suất mười \
lăm phút một chuyến.

— Cuối tuần này cậu có rảnh không?
— Có, sao thế?
— Mình định đi leo núi, cậu đi cùng nhé?
— Được, nhớ gọi mình dậy sớm đấy.

Ở nhiều làng quê, chiếc cầu tre bắc qua con kênh nhỏ là con đường duy nhất để học sinh đến \
trường. Mỗi mùa mưa, người dân lại cùng nhau gia cố cầu bằng những thân tre mới và dây mây. \
Gần đây, chính quyền địa phương đã bắt đầu thay thế dần các cây cầu này bằng cầu bê tông để \
đảm bảo an toàn cho trẻ em.
""",
    "Indonesian": """\
Setiap kali musim hujan tiba, ibu saya selalu menyiapkan wedang jahe di dapur. Ia memarut \
jahe segar, merebusnya bersama gula merah dan sebatang serai, lalu menuangkannya ke dalam \
gelas-gelas besar. Kami duduk di teras sambil mendengarkan suara hujan di atap seng, dan ibu \
bercerita tentang masa kecilnya di desa, ketika listrik belum masuk dan anak-anak belajar \
dengan lampu minyak. Cerita itu sudah kami dengar puluhan kali, tetapi entah mengapa kami \
tidak pernah bosan.

Indonesia terletak di pertemuan beberapa lempeng tektonik, sehingga negara ini memiliki lebih \
dari seratus gunung api aktif. Letusan gunung api memang bisa berbahaya, tetapi abu vulkanik \
yang jatuh ke tanah juga membuatnya sangat subur. Itulah sebabnya banyak sawah dan perkebunan \
berada di lereng gunung. Para ahli terus memantau aktivitas gunung-gunung tersebut dengan \
alat pengukur gempa dan gas agar masyarakat dapat dievakuasi tepat waktu.

Untuk membuat nasi goreng sederhana, panaskan dua sendok makan minyak di wajan, lalu tumis \
bawang merah, bawang putih, dan cabai yang sudah dihaluskan sampai harum. Masukkan sebutir \
telur, orak-arik sebentar, kemudian tambahkan dua piring nasi putih yang sudah dingin. Beri \
kecap manis, garam, dan sedikit merica, lalu aduk rata dengan api besar selama beberapa \
menit. Sajikan dengan irisan mentimun dan kerupuk.

Pemerintah kota mengumumkan bahwa taman kota yang baru akan dibuka untuk umum pada akhir \
bulan ini. Taman tersebut dilengkapi jalur lari, area bermain anak, dan perpustakaan kecil \
yang buka setiap hari.

"Kamu sudah makan siang?"
"Belum, tadi rapatnya lama sekali."
"Ayo ke warung di seberang, sotonya enak."
"Boleh, tapi aku yang traktir hari ini."

Komodo adalah kadal terbesar di dunia dan hanya hidup di beberapa pulau di Nusa Tenggara \
Timur. Hewan ini dapat tumbuh hingga tiga meter dan mampu mencium bau bangkai dari jarak \
beberapa kilometer. Untuk melindunginya, jumlah wisatawan yang boleh masuk ke taman nasional \
kini dibatasi setiap harinya, dan setiap rombongan wajib didampingi oleh seorang pemandu \
resmi.

Batik adalah kain bergambar yang dibuat dengan menorehkan lilin panas pada kain sebelum \
dicelup ke dalam pewarna. Bagian yang tertutup lilin tidak menyerap warna, sehingga motifnya \
tetap terlihat setelah lilin dilunturkan.
""",
}
