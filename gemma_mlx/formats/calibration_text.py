"""Built-in calibration texts (many languages, code and math) for GPTQ quantization."""

CALIBRATION_TEXTS: dict[str, str] = {
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
    "Chinese": """\
去年秋天，我第一次跟着舅舅去海边的渔村住了一个星期。天还没亮，码头上就已经热闹起来，渔民们一边\
检查渔网，一边大声讨论今天的风向。舅舅的船不大，只能坐四个人，发动机的声音却响得吓人。出海以后\
，海面一开始很平静，太阳从云层后面慢慢升起来，把整片海染成了金色。中午我们回到岸边，舅妈早已在\
锅里烧好了水，刚打上来的虾蟹只需要简单地煮一煮，蘸点醋就非常鲜美。

火山是地球内部的岩浆冲破地壳后形成的。地球深处温度极高，部分岩石会熔化成岩浆，当压力积累到一定\
程度时，岩浆就会沿着裂缝上升并喷出地表。有的火山喷发比较温和，熔岩像河流一样缓缓流淌；有的却十\
分猛烈，火山灰可以被抛到几十公里高的空中，甚至影响全球的气候。火山虽然危险，但火山灰分解后形成\
的土壤非常肥沃，所以很多火山附近都有发达的农业。

如果你想在家里种一盆小番茄，可以先准备一个直径三十厘米左右的花盆和疏松透气的土壤。种子播下后保\
持土壤湿润，大约一周就会发芽。等幼苗长出四五片叶子时，只留下最健壮的一棵。番茄喜欢阳光，每天至\
少需要六个小时的光照。开花以后，可以轻轻摇动枝条帮助授粉，一个多月后就能吃到自己种的果实了。

据报道，我国科研团队近日成功研制出一种新型可降解塑料，它在自然环境中六个月内就能被微生物分解。\
专家表示，这项技术有望在食品包装和农用薄膜领域率先推广。

“这周末你打算干什么？”
“我想去图书馆借几本书，然后在家好好睡一觉。”
“要不要一起去看看新开的那家书店？听说里面还有咖啡馆。”
“好啊，那我们周六下午见吧。”

长城并不是一次修建完成的。从春秋战国时期开始，不同朝代都在北方修筑城墙，用来抵御游牧民族的侵扰\
。今天我们看到的砖石结构，大多是明朝时期留下来的。由于风吹雨打和人为破坏，不少段落已经残缺不全\
，文物部门正在按照“修旧如旧”的原则进行保护和修复。
""",
    "Japanese": """\
祖父の家の裏には、小さな竹林があった。春になると、祖父は朝早く私を起こして、たけのこ掘りに連れ\
て行ってくれた。地面からほんの少しだけ頭を出しているものを見つけるのがこつで、慣れないうちは何\
度も足で踏んでしまった。掘ったたけのこはその日のうちに米ぬかと一緒にゆでて、あくを抜く。夕食に\
は祖母が作ったたけのこご飯が並び、家じゅうにやさしい香りが広がった。

ホタルが光るのは、体の中でルシフェリンという物質が酸素と反応するからである。この反応では熱がほ\
とんど出ないため、「冷たい光」とも呼ばれている。光り方のリズムは種類によって異なり、オスとメス\
は光の点滅で互いを見つけ合う。近年は川の護岸工事や農薬の影響でホタルの数が減ったが、各地で幼虫\
のえさとなるカワニナを増やす取り組みが続けられている。

自転車のタイヤに空気を入れるときは、まずバルブの種類を確認してください。日本のいわゆるママチャ\
リには英式バルブが多く、スポーツ車には仏式や米式が使われています。空気圧の目安はタイヤの側面に\
書かれているので、入れすぎないように注意しましょう。月に一度は点検するのが理想です。

市内の商店街で先週末、毎年恒例の夏祭りが開かれ、三日間でおよそ五万人が訪れた。今年は地元の中学\
生が企画した手作りの屋台も出店し、大いににぎわった。

「この資料、明日の会議までにまとめておいてもらえますか」
「はい、わかりました。グラフも入れたほうがいいですか」
「そうですね、去年との比較があると助かります」

江戸時代の人々は、使えなくなった物をすぐに捨てることはほとんどなかった。割れた茶わんは漆でつな\
ぎ合わせ、破れた着物はほどいて子どもの服や雑巾に作り直した。古い紙を集めて売り歩く商売もあり、\
町全体が一つの大きなリサイクルの仕組みになっていたといえる。こうした知恵は、物があふれる現代の\
暮らしを見直すうえでも参考になるだろう。

「すみません、この近くに郵便局はありますか」
「ええ、この道をまっすぐ行って、二つ目の信号を右に曲がるとすぐですよ」
""",
    "Korean": """\
처음 혼자 자취를 시작했을 때 가장 어려웠던 것은 밥을 해 먹는 일이었다. 전기밥솥에 물을 얼마나 \
넣어야 하는지도 몰라서, 어떤 날은 죽처럼 질척한 밥이 되고 어떤 날은 바닥이 새까맣게 타 \
버렸다. 결국 어머니께 전화를 걸었더니, 손등에 물이 닿을 만큼만 부으면 된다고 웃으며 알려 \
주셨다. 그 뒤로 몇 달이 지나자 나도 제법 그럴듯한 된장찌개를 끓일 수 있게 되었다.

번개는 구름 속에서 얼음 알갱이와 물방울이 서로 부딪히면서 전기가 쌓였다가 한꺼번에 방전되는 \
현상이다. 번개가 지나가는 길의 공기는 순간적으로 태양 표면보다 뜨거운 수만 도까지 올라가고, \
이때 공기가 급격히 팽창하면서 천둥소리가 난다. 빛은 소리보다 훨씬 빠르기 때문에 우리는 번개를 \
먼저 보고 천둥을 나중에 듣게 된다.

겨울철 실내 습도를 적당히 유지하려면 가습기를 사용하거나 젖은 빨래를 방 안에 널어 두는 것이 \
좋다. 적정 습도는 사십에서 육십 퍼센트 정도이며, 너무 높으면 오히려 곰팡이가 생길 수 있으니 \
하루에 두세 번은 창문을 열어 환기해야 한다.

지난 주말 열린 지역 마라톤 대회에는 약 만 이천 명이 참가했다. 주최 측은 올해 처음으로 휠체어 \
부문을 신설했으며, 참가자들의 반응이 좋아 내년에도 이어 갈 계획이라고 밝혔다.

"이번 방학에 뭐 할 거야?"
"운전면허를 따 보려고. 너는?"
"나는 아르바이트하면서 돈 모아서 여행 갈 거야."
"좋겠다. 사진 많이 찍어 와."

조선 시대의 한옥은 계절에 따라 생활하기 편하도록 지어졌다. 여름에는 바람이 잘 통하는 \
대청마루에서 더위를 피했고, 겨울에는 방바닥 아래로 뜨거운 연기가 지나가는 온돌 덕분에 \
따뜻하게 지낼 수 있었다. 처마의 길이도 여름 햇빛은 막고 겨울 햇빛은 방 안 깊숙이 들어오도록 \
계산되어 있었다. 요즘에도 이런 원리를 응용해 에너지를 적게 쓰는 집을 짓는 건축가들이 늘고 \
있다.
""",
    "Arabic": """\
كانت جدتي تسكن في بيت قديم على أطراف القرية، له فناء واسع تتوسطه شجرة ليمون كبيرة. وفي ليالي \
الصيف كنا نفرش الحصير تحت الشجرة وننام في الهواء الطلق، نعد النجوم حتى يغلبنا النعاس. وكانت \
جدتي تحكي لنا عن أيام شبابها، حين كانت النساء يذهبن معًا إلى النبع لجلب الماء، ويغنين طوال \
الطريق كي لا يشعرن بالتعب. لم أكن أصدق نصف ما تقوله، لكنني اليوم أتمنى لو كتبت كل تلك \
الحكايات قبل أن تضيع.

يعد الجمل من أكثر الحيوانات قدرة على التكيف مع الحياة في الصحراء. فهو يستطيع أن يمضي أيامًا \
طويلة دون أن يشرب، ثم يشرب أكثر من مئة لتر من الماء في دقائق قليلة. وخلافًا للاعتقاد الشائع، \
لا يخزن الجمل الماء في سنامه، بل يخزن فيه الدهون التي يستمد منها الطاقة عند قلة الطعام. كما \
أن له رموشًا طويلة وأنفًا يستطيع إغلاقه لحماية نفسه من الرمال أثناء العواصف، وتتحمل أقدامه \
العريضة حرارة الرمال دون أن تغوص فيها.

لزراعة النعناع في المنزل، اختر أصيصًا متوسط الحجم فيه ثقوب للتصريف، واملأه بتربة خفيفة غنية \
بالسماد. يمكنك أن تبدأ بغصن طازج من النعناع، فتضعه في كوب من الماء حتى تظهر له جذور صغيرة بعد \
أسبوع تقريبًا، ثم تنقله إلى التربة. ضع الأصيص في مكان يصله ضوء الشمس بضع ساعات يوميًا، واسق \
النبتة كلما جف سطح التربة. وكلما قطفت الأوراق العلوية، نمت النبتة أكثر وصارت أكثف.

افتتحت وزارة الثقافة أمس معرضًا للكتاب في العاصمة بمشاركة أكثر من ثلاثمئة دار نشر من عشرين \
دولة. ويتضمن برنامج المعرض ندوات يومية وأمسيات شعرية وورشًا لتعليم الأطفال الرسم والكتابة. \
ويستمر المعرض عشرة أيام، ويفتح أبوابه من العاشرة صباحًا حتى التاسعة مساءً.

- متى يصل القطار القادم إلى المحطة؟
- بعد ربع ساعة تقريبًا، لكنه يتأخر أحيانًا في المساء.
- إذن سأشتري قهوة وأنتظر هنا.
- فكرة جيدة، المقهى الصغير عند المدخل قهوته ممتازة.

في القرن التاسع، ازدهر بيت الحكمة في بغداد في عهد الخليفة المأمون، واجتمع فيه علماء ومترجمون \
من مختلف البلاد. ترجم هؤلاء كتبًا في الطب والفلك والرياضيات من اليونانية والفارسية والسريانية \
إلى العربية، وأضافوا إليها شروحًا واكتشافات جديدة.
""",
    "Hindi": """\
हमारे घर के पास एक पुराना बरगद का पेड़ है, जिसकी जड़ें ज़मीन तक लटकती रहती हैं। सुबह-सुबह मोहल्ले के बुज़ुर्ग उसके \
नीचे बैठकर अख़बार पढ़ते हैं और देश-दुनिया की ख़बरों पर लंबी बहस करते हैं। दोपहर में वहीं एक चाय वाला अपनी \
छोटी-सी दुकान लगाता है, और शाम होते ही बच्चे पेड़ की जड़ों से झूला झूलने लगते हैं। पिछले साल जब सड़क चौड़ी करने के \
लिए पेड़ काटने की बात उठी, तो पूरा मोहल्ला एकजुट होकर उसे बचाने के लिए खड़ा हो गया।

चंद्रमा हमेशा अपना एक ही हिस्सा पृथ्वी की ओर रखता है। इसका कारण यह है कि वह जितने समय में अपनी धुरी पर एक \
चक्कर लगाता है, लगभग उतने ही समय में पृथ्वी की एक परिक्रमा भी पूरी कर लेता है। वैज्ञानिक इसे ज्वारीय बंधन कहते \
हैं। चंद्रमा का गुरुत्वाकर्षण समुद्र के पानी को अपनी ओर खींचता है, जिससे दिन में दो बार ज्वार-भाटा आता है। \
पूर्णिमा और अमावस्या के दिन सूर्य और चंद्रमा एक सीध में होते हैं, इसलिए उस समय ज्वार सबसे ऊँचे होते हैं।

घर पर दाल तड़का बनाने के लिए एक कप अरहर की दाल को अच्छी तरह धोकर आधे घंटे के लिए भिगो दें। फिर उसे तीन \
कप पानी, हल्दी और नमक के साथ प्रेशर कुकर में तीन सीटी आने तक पकाएँ। एक अलग कड़ाही में घी गरम करें, उसमें \
जीरा, कटा हुआ लहसुन, हरी मिर्च और एक चुटकी हींग डालें। जब लहसुन सुनहरा हो जाए, तो कटे टमाटर डालकर नरम \
होने तक भूनें और यह तड़का दाल में मिला दें। ऊपर से हरा धनिया डालकर चावल या रोटी के साथ परोसें।

राज्य सरकार ने घोषणा की है कि अगले शैक्षणिक सत्र से सभी सरकारी स्कूलों में कंप्यूटर प्रयोगशालाएँ बनाई जाएँगी। \
शिक्षा मंत्री के अनुसार पहले चरण में ग्रामीण इलाक़ों के दो हज़ार स्कूलों को शामिल किया जाएगा, और शिक्षकों के लिए \
विशेष प्रशिक्षण भी आयोजित किया जाएगा।

"भैया, स्टेशन जाने का कितना किराया लगेगा?"
"सौ रुपये लगेंगे, बहनजी।"
"पिछली बार तो अस्सी में गई थी।"
"ठीक है, नब्बे दे दीजिए, रास्ते में बहुत जाम है।"

भारत में हर साल हज़ारों प्रवासी पक्षी सर्दियों के मौसम में साइबेरिया और मध्य एशिया से उड़कर आते हैं। राजस्थान और \
गुजरात की झीलों में इन दिनों सारस, राजहंस और कई तरह की बत्तखें देखी जा सकती हैं।
""",
    "Thai": """\
ทุกเช้าวันอาทิตย์ ยายจะพาฉันไปตลาดน้ำใกล้บ้าน เราต้องออกจากบ้านตั้งแต่ฟ้ายังไม่สว่าง เพราะแม่ค้าที่ขายของดีๆ \
มักจะขายหมดก่อนแปดโมง เรือลำเล็กๆ บรรทุกผักผลไม้ ขนมไทย และก๋วยเตี๋ยวร้อนๆ พายไปมาอยู่เต็มคลอง \
ยายรู้จักแม่ค้าแทบทุกคน และมักจะคุยกันนานจนฉันต้องดึงแขนเสื้อให้รีบไป ตอนนั้นฉันรู้สึกเบื่อ \
แต่ตอนนี้กลับคิดถึงบรรยากาศแบบนั้นมาก

ช้างเอเชียเป็นสัตว์ที่มีความจำดีและมีความผูกพันในครอบครัวสูง ฝูงช้างมักมีช้างเพศเมียที่อายุมากที่สุดเป็นผู้นำ \
เพราะนางจำเส้นทางไปยังแหล่งน้ำและแหล่งอาหารได้แม้ในปีที่แห้งแล้ง ช้างใช้งวงทั้งดมกลิ่น หยิบอาหาร ดื่มน้ำ และสื่อสารกัน \
นอกจากนี้ยังสามารถส่งเสียงความถี่ต่ำที่มนุษย์ไม่ได้ยิน ซึ่งเดินทางได้ไกลหลายกิโลเมตร

วิธีทำไข่เจียวให้ฟูกรอบ ให้ตอกไข่สองฟองใส่ชาม เติมน้ำปลาเล็กน้อยและน้ำมะนาวไม่กี่หยด แล้วตีให้เข้ากันจนเป็นฟอง \
ตั้งกระทะใส่น้ำมันมากพอสมควรและรอจนน้ำมันร้อนจัด จากนั้นเทไข่ลงไปจากที่สูงเล็กน้อย ไข่จะพองขึ้นทันที \
ทอดจนขอบเป็นสีเหลืองทองแล้วกลับด้าน ตักขึ้นพักบนกระดาษซับน้ำมัน เสิร์ฟกับข้าวสวยร้อนๆ และซอสพริก

กรมอุตุนิยมวิทยาประกาศว่าฤดูฝนปีนี้อาจเริ่มช้ากว่าปกติประมาณสองสัปดาห์ \
และแนะนำให้เกษตรกรวางแผนการเพาะปลูกอย่างระมัดระวัง

"พรุ่งนี้ว่างไหม ไปดูหนังกันเถอะ"
"ว่างตอนบ่ายนะ เรื่องอะไรเหรอ"
"เรื่องใหม่ที่เพิ่งเข้าโรงเมื่อวาน เพื่อนบอกว่าสนุกมาก"
"ได้เลย เดี๋ยวฉันจองตั๋วให้"

เชียงใหม่เป็นเมืองเก่าที่มีอายุมากกว่าเจ็ดร้อยปี ภายในคูเมืองรูปสี่เหลี่ยมยังมีวัดโบราณหลายแห่ง ในช่วงเทศกาลยี่เป็ง \
ผู้คนจะปล่อยโคมลอยขึ้นสู่ท้องฟ้าและลอยกระทงในแม่น้ำปิงเพื่อขอขมาต่อสายน้ำ
""",
    "Code": """\
# Python: a small LRU cache built on an ordered dictionary.
from collections import OrderedDict


class LRUCache:
    def __init__(self, capacity: int):
        self.capacity = capacity
        self._items = OrderedDict()

    def get(self, key, default=None):
        if key not in self._items:
            return default
        self._items.move_to_end(key)  # mark as most recently used
        return self._items[key]

    def put(self, key, value):
        self._items[key] = value
        self._items.move_to_end(key)
        if len(self._items) > self.capacity:
            self._items.popitem(last=False)  # evict the oldest entry


// JavaScript: debounce a handler so it runs only after the user stops typing.
function debounce(fn, waitMs) {
  let timer = null;
  return function (...args) {
    clearTimeout(timer);
    timer = setTimeout(() => fn.apply(this, args), waitMs);
  };
}

const search = document.querySelector("#search");
search.addEventListener("input", debounce((event) => {
  fetch(`/api/search?q=${encodeURIComponent(event.target.value)}`)
    .then((response) => response.json())
    .then((results) => renderResults(results));
}, 300));

// C++: binary search over a sorted vector; returns the index or -1.
#include <vector>

int findIndex(const std::vector<int>& sorted, int target) {
    int lo = 0, hi = static_cast<int>(sorted.size()) - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;  // avoids overflow of lo + hi
        if (sorted[mid] == target) return mid;
        if (sorted[mid] < target) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

// Go: fetch several URLs concurrently and collect their status codes.
func statusCodes(urls []string) map[string]int {
	var mu sync.Mutex
	var wg sync.WaitGroup
	codes := make(map[string]int)
	for _, u := range urls {
		wg.Add(1)
		go func(url string) {
			defer wg.Done()
			resp, err := http.Get(url)
			if err != nil {
				return
			}
			resp.Body.Close()
			mu.Lock()
			codes[url] = resp.StatusCode
			mu.Unlock()
		}(u)
	}
	wg.Wait()
	return codes
}

-- SQL: monthly revenue per product category, newest month first.
SELECT date_trunc('month', s.sold_at) AS month,
       p.category,
       SUM(s.quantity * s.unit_price) AS revenue
FROM sales s
JOIN products p ON p.id = s.product_id
GROUP BY month, p.category
ORDER BY month DESC, revenue DESC;

<!-- HTML: a minimal sign-up form. -->
<form action="/signup" method="post">
  <label for="email">Email</label>
  <input id="email" name="email" type="email" required>
  <label for="password">Password</label>
  <input id="password" name="password" type="password" minlength="8" required>
  <button type="submit">Create account</button>
</form>
""",
    "Math": """\
Worked example 1. Solve the quadratic equation $2x^2 - 7x + 3 = 0$.
Using the formula $x = \\frac{-b \\pm \\sqrt{b^2 - 4ac}}{2a}$ with $a = 2$, $b = -7$, $c = 3$:
the discriminant is $b^2 - 4ac = 49 - 24 = 25$, so $\\sqrt{25} = 5$ and
$x = \\frac{7 \\pm 5}{4}$, which gives $x_1 = 3$ and $x_2 = \\frac{1}{2}$.
Check: $2 \\cdot 3^2 - 7 \\cdot 3 + 3 = 18 - 21 + 3 = 0$.

Worked example 2. A car travels 150 km in 1 h 40 min. What is its average speed?
1 h 40 min = 1 + 40/60 = 5/3 h, so v = 150 km / (5/3 h) = 90 km/h.
In metres per second: 90 km/h = 90 000 m / 3600 s = 25 m/s.

Worked example 3. Compute the integral $\\int_0^2 (3x^2 + 2x)\\,dx$.
An antiderivative is $x^3 + x^2$, so the integral equals $(8 + 4) - (0 + 0) = 12$.

Worked example 4. The sum of the first n positive integers is
$\\sum_{k=1}^{n} k = \\frac{n(n+1)}{2}$. For n = 100 this gives 100 * 101 / 2 = 5050.

Worked example 5. A savings account pays 4% interest per year, compounded annually.
Starting with 2 500 euros, after 3 years the balance is
$2500 \\times 1.04^3 = 2500 \\times 1.124864 = 2812.16$ euros.

Worked example 6. Find the derivative of $f(x) = x^2 \\sin x$.
By the product rule, $f'(x) = 2x \\sin x + x^2 \\cos x$.
At $x = \\pi$: $f'(\\pi) = 2\\pi \\cdot 0 + \\pi^2 \\cdot (-1) = -\\pi^2 \\approx -9.8696$.

Worked example 7. Probability: two fair dice are rolled. What is P(sum = 7)?
There are 6 * 6 = 36 equally likely outcomes, and 6 of them give a sum of 7:
(1,6), (2,5), (3,4), (4,3), (5,2), (6,1). Hence P = 6/36 = 1/6 ≈ 0.1667.

Identities: $e^{i\\pi} + 1 = 0$, $\\sin^2\\theta + \\cos^2\\theta = 1$,
$(a + b)^2 = a^2 + 2ab + b^2$, $\\log_{10} 1000 = 3$, $\\ln e^5 = 5$, $2^{10} = 1024$.
The area of a circle of radius r = 3 cm is $A = \\pi r^2 \\approx 28.27\\ \\mathrm{cm}^2$.
""",
}
